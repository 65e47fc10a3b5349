import * as grpc from '@grpc/grpc-js'
import type { ServerJob } from '../messages'
import { decodeStreamRequest, maybeCorrupt, SinkChecker, streamChunk } from '../payloads'
import { drained } from '../util'
import { BENCH_SERVICE, GRPC_COMMON_OPTIONS } from './grpc-service'
import type { TargetServer, Warn } from './server-target'

/** grpc-js with the generic Buffer service. Response compression is not implemented by grpc-js servers. */
export async function startGrpcServer(job: ServerJob, warn: Warn): Promise<TargetServer> {
  const server = new grpc.Server(GRPC_COMMON_OPTIONS)
  server.addService(BENCH_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      callback(null, maybeCorrupt(call.request))
    },
    Stream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const run = async () => {
        const { count, size } = decodeStreamRequest(call.request)
        for (let i = 0; i < count; i++) {
          if (call.cancelled) return
          if (!call.write(streamChunk(i, size))) await drained(call)
        }
        call.end()
      }
      run().catch((err: Error) => {
        warn(`grpc stream failed: ${err.message}`)
        call.destroy(err)
      })
    },
    Session: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (message: Buffer) => call.write(maybeCorrupt(message)))
      call.on('end', () => call.end())
      call.on('error', () => {})
    },
    Sink: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      const sink = new SinkChecker()
      call.on('data', (message: Buffer) => sink.accept(message))
      call.on('end', () => {
        call.write(sink.summary())
        call.end()
      })
      call.on('error', () => {})
    },
  })
  const credentials = grpc.ServerCredentials.createSsl(
    null,
    [{ private_key: Buffer.from(job.key), cert_chain: Buffer.from(job.cert) }],
    false,
  )
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
  )
  return {
    port,
    close: (timeoutMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown()
          resolve()
        }, timeoutMs)
        server.tryShutdown(() => {
          clearTimeout(timer)
          resolve()
        })
      }),
  }
}
