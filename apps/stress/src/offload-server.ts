/**
 * The server of the offload run: `/light` answers at once; `/heavy-inline` keeps the event loop
 * busy for SRPC_STRESS_HEAVY_MS; `/heavy-threads` does the same work on a @srpc/threads pool.
 */
import { Server } from '@srpc/server'
import { ThreadPool } from '@srpc/threads'
import spin from './offload-task'

const env = process.env
const heavyMs = Number(env.SRPC_STRESS_HEAVY_MS)
const threads = new ThreadPool({
  filename: new URL('./offload-task.js', import.meta.url),
  maxThreads: Number(env.SRPC_STRESS_THREADS),
  minThreads: Number(env.SRPC_STRESS_THREADS),
  maxQueue: 256,
})
const server = new Server({
  address: '127.0.0.1:0',
  tls: { key: env.SRPC_STRESS_KEY, cert: env.SRPC_STRESS_CERT },
})
server.handle('/light', () => 'ok')
server.handle('/heavy-inline', () => spin(heavyMs))
server.handle('/heavy-threads', (ctx) => threads.run<string>(ctx, heavyMs))
const { port } = await server.listen()
process.stdout.write(`${JSON.stringify({ event: 'ready', at: Date.now(), port })}\n`)
process.on('SIGTERM', async () => {
  await server.shutdown({ timeout: 2000 })
  await threads.destroy()
  process.exit(0)
})
