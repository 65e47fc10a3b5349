#!/usr/bin/env node
// Bytes allocated per unary call, both ends (a Pool and a Server in one process over memory
// transports, 64 in flight, 64 B payloads), by allocation site, counting objects the GC already
// collected (V8's sampling heap profiler with includeObjectsCollectedBy*GC). The machine's load
// barely moves it, so it is a steady A/B for per-call garbage:
//   node scripts/alloc-per-call.mjs [root] [rows]
// with `root` a checkout whose packages are built (this one by default).
import { Session } from 'node:inspector/promises'
import { resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const root = pathToFileURL(resolve(process.argv[2] ?? fileURLToPath(new URL('..', import.meta.url)))).href
const rows = Number(process.argv[3] ?? 15)
const { memoryTransportPair, Pool } = await import(`${root}/packages/client/dist/index.js`)
const { Server } = await import(`${root}/packages/server/dist/index.js`)

const server = new Server()
server.handle('/bench/echo', (ctx) => ctx.payload)
const pool = new Pool({
  address: 'svc:443',
  compression: false,
  connector: async () => {
    const [c, s] = memoryTransportPair()
    server.accept(s)
    return c
  },
})
await pool.connect()
const payload = Buffer.alloc(64)
async function run(n) {
  let i = 0
  const worker = async () => {
    while (i++ < n) await pool.call('/bench/echo', payload)
  }
  await Promise.all(Array.from({ length: 64 }, worker))
}
await run(50_000)
const session = new Session()
session.connect()
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 64,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
})
const calls = 100_000
await run(calls)
const { profile } = await session.post('HeapProfiler.stopSampling')
let total = 0
const bySite = new Map()
function walk(node, stack) {
  const { functionName, url, lineNumber } = node.callFrame
  const name = `${functionName || '(anonymous)'} ${url.split('/').pop()}:${lineNumber + 1}`
  if (node.selfSize > 0) {
    const key = `${name}  <- ${stack.slice(-3).reverse().join(' <- ')}`
    bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize)
    total += node.selfSize
  }
  for (const child of node.children) walk(child, [...stack, functionName || '(anonymous)'])
}
walk(profile.head, [])
console.log(`bytes allocated per call, both ends: ${Math.round(total / calls)}`)
for (const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
  console.log(`${String(Math.round(bytes / calls)).padStart(6)} B  ${site}`)
}
await pool.close()
await server.close()
