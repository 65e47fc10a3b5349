import * as grpc from '@grpc/grpc-js'
import { encodeStreamRequest } from '../payloads'
import { drained } from '../util'
import type { BenchClient, BenchSession, OpenOptions } from './client-target'
import { BENCH_SERVICE, GRPC_COMMON_OPTIONS } from './grpc-service'
import { MessageInbox } from './message-inbox'

const RESOLVED = Promise.resolve()
const READY_TIMEOUT_MS = 10_000
const BenchClientCtor = grpc.makeGenericClientConstructor(BENCH_SERVICE, 'Bench')

type UnaryMethod = (
  request: Buffer,
  callback: (err: grpc.ServiceError | null, reply?: Buffer) => void,
) => void
type ServerStreamMethod = (request: Buffer) => grpc.ClientReadableStream<Buffer>
type BidiMethod = () => grpc.ClientDuplexStream<Buffer, Buffer>

function session(call: grpc.ClientDuplexStream<Buffer, Buffer>): BenchSession {
  const inbox = new MessageInbox()
  call.on('data', (message: Buffer) => inbox.push(message))
  call.on('end', () => inbox.end())
  call.on('error', (err) => inbox.fail(err))
  return {
    send: (message) => (call.write(message) ? RESOLVED : drained(call)),
    receive: () => inbox.receive(),
    end: () => call.end(),
  }
}

/**
 * grpc-js clients on the generic service. Each of the `size` clients has its own channel, and
 * `grpc.use_local_subchannel_pool` keeps channels from sharing one connection.
 */
export async function openGrpcClient(options: OpenOptions): Promise<BenchClient> {
  const credentials = grpc.credentials.createSsl(Buffer.from(options.ca))
  const channelOptions: grpc.ChannelOptions = {
    ...GRPC_COMMON_OPTIONS,
    'grpc.use_local_subchannel_pool': 1,
    // gzip on requests; grpc-js servers do not compress responses.
    ...(options.compression === 'on'
      ? { 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip }
      : {}),
  }
  const clients = Array.from(
    { length: options.size },
    () => new BenchClientCtor(`127.0.0.1:${options.port}`, credentials, channelOptions),
  )
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve, reject) =>
          client.waitForReady(Date.now() + READY_TIMEOUT_MS, (err) => (err ? reject(err) : resolve())),
        ),
    ),
  )
  const echo = clients.map((c) => (c.Echo as UnaryMethod).bind(c))
  let next = 0
  const pick = () => clients[next++ % clients.length]
  return {
    call(request, done) {
      echo[next++ % echo.length](request, (err, reply) => done(err ?? undefined, reply))
    },
    stream(count, size, onChunk) {
      const client = pick()
      const call = (client.Stream as ServerStreamMethod).call(client, encodeStreamRequest(count, size))
      return new Promise((resolve, reject) => {
        call.on('data', onChunk)
        call.on('end', () => resolve())
        call.on('error', reject)
      })
    },
    async openSession(kind) {
      const client = pick()
      const method = (kind === 'echo' ? client.Session : client.Sink) as BidiMethod
      return session(method.call(client))
    },
    async close() {
      for (const client of clients) client.close()
    },
  }
}
