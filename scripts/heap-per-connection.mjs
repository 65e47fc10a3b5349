#!/usr/bin/env node
// Heap per connection of a Pool and a Server in one process over memory transports (no sockets,
// so the machine's load barely matters): `node --expose-gc scripts/heap-per-connection.mjs [root] [N]`
// with `root` a checkout whose packages are built (this one by default). Compare two commits by
// running it on a worktree of each. Client and server ends are counted together.
// `--pools` makes N Pools of one connection each (as bench scenario g's client does) instead of
// one Pool of N; `--snapshot FILE` writes a heap snapshot of the idle state (compare by constructor).
import { fileURLToPath } from 'node:url'
import { writeHeapSnapshot } from 'node:v8'

if (typeof gc !== 'function') {
  console.error('run with node --expose-gc')
  process.exit(2)
}
const flags = process.argv.slice(2)
const pools = flags.includes('--pools')
const snapshotAt = flags.indexOf('--snapshot')
const snapshot = snapshotAt >= 0 ? flags.splice(snapshotAt, 2)[1] : undefined
const args = flags.filter((a) => !a.startsWith('--'))
const root = args[0] ?? fileURLToPath(new URL('..', import.meta.url))
const N = Number(args[1] ?? 2000)
const { Pool, memoryTransportPair } = await import(`${root}/packages/client/dist/index.js`)
const { Server } = await import(`${root}/packages/server/dist/index.js`)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
async function heap() {
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  return process.memoryUsage().heapUsed
}

const server = new Server({ maxConnections: N + 10 })
server.handle('/echo', (ctx) => ctx.payload)
const before = await heap()
const connector = async () => {
  const [clientEnd, serverEnd] = memoryTransportPair()
  server.accept(serverEnd)
  return clientEnd
}
// healthCheck off for one shared pool (as before --pools existed); a Pool per connection keeps
// the defaults, as the bench's g client does.
const all = pools
  ? Array.from({ length: N }, () => new Pool({ address: 'svc:443', size: 1, connector }))
  : [new Pool({ address: 'svc:443', size: N, healthCheck: false, connector })]
await Promise.all(all.map((pool) => pool.connect()))
await sleep(300)
const idle = await heap()
if (snapshot) writeHeapSnapshot(snapshot)
const payload = Buffer.alloc(64)
const call = pools ? (i) => all[i].call('/echo', payload) : () => all[0].call('/echo', payload)
for (let round = 0; round < 3; round++) {
  await Promise.all(Array.from({ length: N }, (_, i) => call(i)))
}
await sleep(300)
const used = await heap()
const kib = (bytes) => Number((bytes / N / 1024).toFixed(2))
console.log(
  JSON.stringify({
    root,
    pools: all.length,
    connections: server.connections,
    idleKiB: kib(idle - before),
    afterCallsKiB: kib(used - before),
  }),
)
await Promise.all(all.map((pool) => pool.destroy()))
await server.destroy()
