#!/usr/bin/env node
// CPU per unary call (client and server together, one process, memory transport, 64 in flight)
// with no interceptor and with one pass-through interceptor: what an interceptor on every call
// would cost. `node scripts/interceptor-cost.mjs plain|interceptor` after a build; run both,
// alternating, a few times. Prints the median of 5 repetitions of 100,000 calls.
import { inProcessEcho } from './lib/in-process-echo.mjs'

const mode = process.argv[2] ?? 'plain'
const pass = (next) => (call) => next(call)
const { pool, server, run } = await inProcessEcho({
  route: '/echo',
  poolOptions: { interceptors: mode === 'interceptor' ? [pass] : [] },
})
await run(20000)
const reps = []
for (let r = 0; r < 5; r++) {
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  await run(100000)
  const c = process.cpuUsage(c0)
  const t = performance.now() - t0
  reps.push({ usPerCall: (c.user + c.system) / 100000, callsPerS: Math.round((100000 / t) * 1000) })
}
reps.sort((a, b) => a.usPerCall - b.usPerCall)
console.log(mode, JSON.stringify(reps[2]))
await pool.close()
await server.close()
