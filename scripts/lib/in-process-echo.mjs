// The setup the per-call measurement scripts share: a Pool and a Server of the checkout at
// `root` in this one process, joined by memory transports (no TLS, no sockets), an echo route,
// and `run(n)`, which makes n calls with 64 in flight and resolves when they are done.
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** The checkout to measure: the first argument, or this one. */
export function checkoutRoot(arg) {
  return pathToFileURL(resolve(arg ?? fileURLToPath(new URL('../..', import.meta.url)))).href
}

export async function inProcessEcho({
  root = checkoutRoot(),
  route = '/bench/echo',
  poolOptions = {},
  serverOptions = {},
} = {}) {
  const { memoryTransportPair, Pool } = await import(`${root}/packages/client/dist/index.js`)
  const { Server } = await import(`${root}/packages/server/dist/index.js`)
  const server = new Server(serverOptions)
  server.handle(route, (ctx) => ctx.payload)
  const pool = new Pool({
    address: 'svc:443',
    ...poolOptions,
    connector: async () => {
      const [c, s] = memoryTransportPair()
      server.accept(s)
      return c
    },
  })
  await pool.connect()
  const payload = Buffer.alloc(64)
  async function run(n, inFlight = 64) {
    let i = 0
    const worker = async () => {
      while (i++ < n) await pool.call(route, payload)
    }
    await Promise.all(Array.from({ length: inFlight }, worker))
  }
  return { pool, server, run }
}
