/**
 * The server process of a scale or soak run: one srpc Server on 127.0.0.1, started, sampled and
 * stopped by its parent over IPC. It checks the sequence numbers of session messages itself.
 */
import { Code, type Context, RpcError, Server } from '@srpc/server'
import { serverTlsOptions } from '@srpc/tlsutil'
import { serveParent } from './child'
import {
  ROUTES,
  type SampleRequest,
  type ServerCounters,
  type ServerSample,
  type ServerStart,
} from './messages'
import { errorKey, sampleProcess, startPauseMonitor, tally } from './stats'

const SHUTDOWN_TIMEOUT_MS = 5000
/** Longest stream a client may ask for. */
const MAX_CHUNKS = 100_000

let server: Server | undefined
let firstAccept = 0
let lastAccept = 0
const counters: Omit<ServerCounters, 'connections' | 'acceptSpanMs'> = {
  accepted: 0,
  disconnected: 0,
  acceptsPerSecond: [],
  clientErrors: {},
  handlerErrors: 0,
  sequenceErrors: 0,
  sessionsChecked: 0,
  sessionMessages: 0,
}

function onAccept(): void {
  const now = performance.now()
  if (counters.accepted === 0) firstAccept = now
  lastAccept = now
  counters.accepted++
  const second = Math.floor((now - firstAccept) / 1000)
  const perSecond = counters.acceptsPerSecond
  while (perSecond.length <= second) perSecond.push(0)
  perSecond[second]++
}

async function count(ctx: Context): Promise<void> {
  const { n } = JSON.parse(ctx.payload.toString('utf8')) as { n?: unknown }
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_CHUNKS) {
    throw new RpcError(Code.INVALID_ARGUMENT, `n must be a whole number from 1 to ${MAX_CHUNKS}`)
  }
  const stream = ctx.stream()
  for (let i = 0; i < n; i++) await stream.writeChunk(String(i), i === n - 1)
}

async function session(ctx: Context): Promise<void> {
  let received = 0
  for await (const message of ctx.messages()) {
    const seq = Number(message.toString('utf8'))
    // Lost, repeated or reordered: anything but the next number.
    if (seq !== received) counters.sequenceErrors++
    counters.sessionMessages++
    await ctx.sendMessage(`${received}:${seq}`)
    received++
  }
  await ctx.sendMessage(`end:${received}`)
  counters.sessionsChecked++
}

async function start(options: ServerStart): Promise<{ port: number }> {
  if (server) throw new Error('already started')
  server = new Server({
    address: '127.0.0.1:0',
    tls: serverTlsOptions({ key: options.key, cert: options.cert, ca: options.cert }),
    maxConnections: options.maxConnections,
    ...(options.idleTimeout === undefined ? {} : { idleTimeout: options.idleTimeout }),
  })
  server.handle(ROUTES.ping, (ctx) => ctx.payload)
  server.handle(ROUTES.count, count)
  server.handle(ROUTES.session, session)
  server.on('connection', onAccept)
  server.on('disconnect', () => counters.disconnected++)
  server.on('clientError', (err) => tally(counters.clientErrors, errorKey(err)))
  server.on('error', (err) => {
    counters.handlerErrors++
    if (counters.handlerErrors <= 5) console.error('server: handler error:', err)
  })
  const { port } = await server.listen()
  return { port }
}

async function sample(request: SampleRequest): Promise<ServerSample> {
  return {
    ...(await sampleProcess(request.collect)),
    ...counters,
    acceptsPerSecond: [...counters.acceptsPerSecond],
    clientErrors: { ...counters.clientErrors },
    connections: server?.connections ?? 0,
    acceptSpanMs: lastAccept - firstAccept,
  }
}

async function stop(): Promise<void> {
  await server?.shutdown({ timeout: SHUTDOWN_TIMEOUT_MS })
}

startPauseMonitor()
serveParent(
  {
    start: (body: ServerStart) => start(body),
    sample: (body: SampleRequest) => sample(body),
    stop: () => stop(),
  },
  stop,
)
