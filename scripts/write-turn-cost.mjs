#!/usr/bin/env node
// Cost of one write turn of a connection at one call in flight: a FrameConnection sends one 64 B
// frame per event-loop turn over a transport that only calls back, 7 × 200,000 turns after a
// warmup; prints the fastest and the median repetition in ns per turn. Machines are noisy
// between processes: run it several times, alternating checkouts.
//   node scripts/write-turn-cost.mjs [root]
import { checkoutRoot } from './lib/in-process-echo.mjs'

const root = checkoutRoot(process.argv[2])
const { FrameConnection } = await import(`${root}/packages/core/dist/index.js`)
const transport = {
  state: 'open',
  peer: { transport: 'memory' },
  start() {},
  write: (_chunk, written) => {
    written?.()
    return true
  },
  cork() {},
  uncork() {},
  pause() {},
  resume() {},
  close() {},
  destroy() {},
}
const connection = new FrameConnection(transport, { onFrame() {}, onClose() {} })
const value = Buffer.alloc(64, 1)
const turn = () =>
  new Promise((resolve) => {
    connection.sendFrame(0x04, 1, '', value)
    process.nextTick(resolve)
  })
for (let i = 0; i < 50_000; i++) await turn()
const reps = []
for (let r = 0; r < 7; r++) {
  const started = process.hrtime.bigint()
  for (let i = 0; i < 200_000; i++) await turn()
  reps.push(Number(process.hrtime.bigint() - started) / 200_000)
}
reps.sort((a, b) => a - b)
console.log(JSON.stringify({ root, fastestNs: Math.round(reps[0]), medianNs: Math.round(reps[3]) }))
