/**
 * The server of the cluster runs: `runCluster` with SRPC_STRESS_WORKERS workers serving `/echo`
 * and `/cpu` (SRPC_STRESS_CPU_MS of busy loop)
 * on 127.0.0.1:SRPC_STRESS_PORT over TLS (key and cert in the environment). The primary prints
 * one JSON line per event on stdout; SIGHUP rolls the workers, SIGTERM stops them.
 */
import { runCluster, Server } from '@srpc/server'

const env = process.env
const handle = await runCluster({
  workers: Number(env.SRPC_STRESS_WORKERS),
  shutdownTimeout: 5000,
  async worker() {
    const server = new Server({
      address: `127.0.0.1:${env.SRPC_STRESS_PORT}`,
      tls: { key: env.SRPC_STRESS_KEY, cert: env.SRPC_STRESS_CERT },
    })
    server.handle('/echo', (ctx) => ctx.payload)
    // CPU-bound work on the event loop: the kind of route a second worker helps.
    const cpuMs = Number(env.SRPC_STRESS_CPU_MS ?? 1)
    server.handle('/cpu', () => {
      const end = performance.now() + cpuMs
      while (performance.now() < end);
      return 'done'
    })
    await server.listen()
    return server
  },
})

if (handle.role === 'primary') {
  const print = (event: string, fields: object = {}) =>
    process.stdout.write(`${JSON.stringify({ event, at: Date.now(), ...fields })}\n`)
  for (const name of ['restarting', 'restarted', 'close'] as const) handle.on(name, () => print(name))
  handle.on('health', (status) => print('health', { status }))
  handle.on('listening', (w) => print('listening', { ...w }))
  handle.on('exit', (w, code, signal) => print('exit', { ...w, code, signal }))
  handle.on('crash', (w, error) => print('crash', { ...w, message: error.message }))
  handle.on('error', (error) => print('error', { message: error.message }))
  print('ready', { pids: handle.workers.map((w) => w.pid) })
  // The stats line the parent prints after each run: calls per worker.
  process.on('SIGUSR2', async () => print('stats', { workers: await handle.stats() }))
}
