#!/usr/bin/env node
// Bytes allocated per unary call, both ends (a Pool and a Server in one process over memory
// transports, 64 B payloads, 64 calls in flight unless told), by allocation site, counting objects the GC already
// collected (V8's sampling heap profiler with includeObjectsCollectedBy*GC). The machine's load
// barely moves it, so it is a steady A/B for per-call garbage:
//   node scripts/alloc-per-call.mjs [root] [rows] [inFlight]
// with `root` a checkout whose packages are built (this one by default).
import { Session } from 'node:inspector/promises'
import { checkoutRoot, inProcessEcho } from './lib/in-process-echo.mjs'

const rows = Number(process.argv[3] ?? 15)
/** Calls in flight (64 by default; 1 shows what a call costs alone in its event-loop turn). */
const inFlight = Number(process.argv[4] ?? 64)
const { pool, server, run } = await inProcessEcho({
  root: checkoutRoot(process.argv[2]),
  poolOptions: { compression: false },
})
await run(50_000, inFlight)
const session = new Session()
session.connect()
await session.post('HeapProfiler.startSampling', {
  samplingInterval: 64,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
})
const calls = 100_000
await run(calls, inFlight)
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
