import { type Context, Server, type ServerOptions } from '@srpc/server'
import { serverTlsOptions } from '@srpc/tlsutil'
import type { ServerJob } from '../messages'
import { decodeStreamRequest, maybeCorrupt, SinkChecker, streamChunk } from '../payloads'
import { srpcCompression } from './compression'
import { observeFromEnv } from './observe'
import type { TargetServer, Warn } from './server-target'
import { SRPC_ROUTES } from './srpc-routes'

/** srpc's server with the four benchmark routes, written as an application would write them. */
export async function startSrpcServer(job: ServerJob, warn: Warn): Promise<TargetServer> {
  const options: ServerOptions = {
    address: '127.0.0.1:0',
    tls: serverTlsOptions({ key: job.key, cert: job.cert, ca: job.ca }),
    compression: srpcCompression(job.compression),
  }
  const observe = observeFromEnv() // observe-main.ts: the cost of diagnostics channels and OpenTelemetry
  if (observe) options.interceptors = await (await import('./observe')).observeInterceptors(observe, 'server')
  const server = new Server(options)
  server.on('error', (err) => warn(`srpc server error: ${err.message}`))
  server.handle(SRPC_ROUTES.echo, (ctx) => maybeCorrupt(ctx.payload))
  server.handle(SRPC_ROUTES.stream, async (ctx) => {
    const { count, size } = decodeStreamRequest(ctx.payload)
    const stream = ctx.stream()
    for (let i = 0; i < count; i++) await stream.writeChunk(streamChunk(i, size), i === count - 1)
  })
  server.handle(SRPC_ROUTES.sessionEcho, async (ctx: Context) => {
    for await (const message of ctx.messages()) await ctx.sendMessage(maybeCorrupt(message))
  })
  server.handle(SRPC_ROUTES.sessionSink, async (ctx: Context) => {
    const sink = new SinkChecker()
    for await (const message of ctx.messages()) sink.accept(message)
    await ctx.sendMessage(sink.summary())
  })
  const { port } = await server.listen()
  return {
    port,
    close: (timeoutMs) => server.shutdown({ timeout: timeoutMs }),
  }
}
