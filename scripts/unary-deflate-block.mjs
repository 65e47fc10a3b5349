#!/usr/bin/env node
// The event loop's longest block while one large compressible unary value makes a round trip with
// `compression: true` on both ends: a Pool and a Server in this one process, joined by memory
// transports (no TLS, no sockets), so the request's deflate, the reply's deflate and both inflates
// all happen on this thread's event loop (or on zlib's thread pool). Prints, for 5 calls, the
// longest delay `perf_hooks.monitorEventLoopDelay` saw (ms; 1 ms resolution) and the call's wall
// time. Compare two checkouts by running it on each, alternating:
//   node scripts/unary-deflate-block.mjs [root] [MiB]
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { checkoutRoot, inProcessEcho } from './lib/in-process-echo.mjs'

const root = checkoutRoot(process.argv[2])
const mib = Number(process.argv[3] ?? 16)
const options = { compression: true, maxFrameSize: 2 * mib * 1024 * 1024 }
const { pool, server } = await inProcessEcho({
  root,
  route: '/echo',
  poolOptions: options,
  serverOptions: options,
})
await pool.call('/echo', 'warm up')

// JSON-like text, as an API would send: deflate at level 1 shrinks it to about a fifth.
const items = []
let length = 0
for (let i = 0; length < mib * 1024 * 1024; i++) {
  const item = JSON.stringify({ id: (i * 7919) % 100000, name: `item-${i % 97}`, ok: i % 3 === 0 })
  items.push(item)
  length += item.length + 1
}
const payload = Buffer.from(items.join(',')).subarray(0, mib * 1024 * 1024)

await pool.call('/echo', payload, { timeout: 60_000 })
const rows = []
for (let r = 0; r < 5; r++) {
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const started = performance.now()
  const reply = await pool.call('/echo', payload, { timeout: 60_000 })
  const wallMs = performance.now() - started
  // One more turn, so a block at the very end is seen too.
  await new Promise((resolve) => setTimeout(resolve, 5))
  delay.disable()
  if (!reply.equals(payload)) throw new Error('echo mismatch')
  rows.push({ maxBlockMs: +(delay.max / 1e6).toFixed(1), wallMs: +wallMs.toFixed(1) })
}
const blocks = rows.map((r) => r.maxBlockMs).sort((a, b) => a - b)
console.log(
  JSON.stringify({
    root: process.argv[2] ?? '.',
    mib,
    maxBlockMs: { min: blocks[0], median: blocks[2], max: blocks[4] },
    calls: rows,
  }),
)
await pool.close()
await server.close()
