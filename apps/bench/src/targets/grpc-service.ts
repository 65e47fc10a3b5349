import type * as grpc from '@grpc/grpc-js'

const identity = (b: Buffer): Buffer => b

function method(
  name: string,
  requestStream: boolean,
  responseStream: boolean,
): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/bench.Bench/${name}`,
    requestStream,
    responseStream,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  }
}

/** A generic service on raw Buffers: identity serializers, so no protobuf cost is measured. */
export const BENCH_SERVICE = {
  Echo: method('Echo', false, false),
  Stream: method('Stream', false, true),
  Session: method('Session', true, true),
  Sink: method('Sink', true, true),
} satisfies grpc.ServiceDefinition

/** Options both sides use: channelz off (it tracks every call), and big enough messages. */
export const GRPC_COMMON_OPTIONS: grpc.ChannelOptions = {
  'grpc.enable_channelz': 0,
  'grpc.max_receive_message_length': 16 * 1024 * 1024,
  'grpc.max_send_message_length': 16 * 1024 * 1024,
}
