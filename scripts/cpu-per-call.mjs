#!/usr/bin/env node
// CPU per unary call of both ends together: a Pool and a Server in one process over memory
// transports (no TLS, no sockets), 64 calls in flight, 64 B payloads, compression off. Prints
// the minimum and the median of 7 repetitions of 50,000 calls (the minimum is the run the
// machine disturbed least). Compare two checkouts by running it on each, alternating:
//   node scripts/cpu-per-call.mjs [root]
import { checkoutRoot, inProcessEcho } from './lib/in-process-echo.mjs'

const { pool, server, run } = await inProcessEcho({
  root: checkoutRoot(process.argv[2]),
  poolOptions: { compression: false },
})
await run(30_000)
const reps = []
for (let r = 0; r < 7; r++) {
  const before = process.cpuUsage()
  await run(50_000)
  const used = process.cpuUsage(before)
  reps.push((used.user + used.system) / 50_000)
}
reps.sort((a, b) => a - b)
console.log(
  JSON.stringify({ root: process.argv[2] ?? '.', minUs: +reps[0].toFixed(3), medianUs: +reps[3].toFixed(3) }),
)
await pool.close()
await server.close()
