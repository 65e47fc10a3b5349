import { Pool, type PoolOptions } from '@srpc/client'
import { clientTlsOptions } from '@srpc/tlsutil'
import { encodeStreamRequest } from '../payloads'
import type { BenchClient, OpenOptions } from './client-target'
import { srpcCompression } from './compression'
import { observeFromEnv } from './observe'
import { SRPC_ROUTES } from './srpc-routes'

/** How long session.close() may wait for the sink's summary before srpc cancels the session. */
const SESSION_CLOSE_TIMEOUT_MS = 30_000

/** srpc's Pool used as an application would: `size` connections, calls balanced by the pool. */
export async function openSrpcClient(options: OpenOptions): Promise<BenchClient> {
  const poolOptions: PoolOptions = {
    address: `127.0.0.1:${options.port}`,
    tls: clientTlsOptions(options.ca),
    size: options.size,
    compression: srpcCompression(options.compression),
  }
  const observe = observeFromEnv() // observe-main.ts: the cost of diagnostics channels and OpenTelemetry
  if (observe)
    poolOptions.interceptors = await (await import('./observe')).observeInterceptors(observe, 'client')
  const pool = new Pool(poolOptions)
  pool.on('error', () => {}) // background reconnect failures surface as failed calls
  await pool.connect()
  return {
    call(request, done) {
      pool.call(SRPC_ROUTES.echo, request).then(
        (reply) => done(undefined, reply),
        (err: Error) => done(err, undefined),
      )
    },
    async stream(count, size, onChunk) {
      for await (const chunk of pool.callStream(SRPC_ROUTES.stream, encodeStreamRequest(count, size)))
        onChunk(chunk)
    },
    async openSession(kind) {
      const route = kind === 'echo' ? SRPC_ROUTES.sessionEcho : SRPC_ROUTES.sessionSink
      const session = await pool.createBidirectionalSession(route, { closeTimeout: SESSION_CLOSE_TIMEOUT_MS })
      return {
        send: (message) => session.send(message),
        receive: () => session.receive(),
        end: () => {
          session.close().catch(() => {})
        },
      }
    },
    close: () => pool.close(),
  }
}
