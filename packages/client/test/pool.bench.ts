/**
 * Measurements behind the pool's defaults (packages/client/README.md quotes their output).
 * Not a test: run it by hand, after building @srpc/protocol, @srpc/server and @srpc/tlsutil:
 *
 *   npx esbuild packages/client/test/pool.bench.ts --bundle --platform=node --format=esm \
 *     --packages=external --outfile=packages/client/node_modules/.bench/pool.mjs \
 *     && node packages/client/node_modules/.bench/pool.mjs [backoff|restart|balancing]
 *
 * 1. backoff: Monte Carlo of the reconnect schedule (the real Backoff class) against outages of
 *    different lengths: extra downtime after the server is back, attempts made meanwhile.
 * 2. restart: the same on real sockets, a server killed and restarted on its port, per schedule.
 * 3. balancing: round-robin against least-in-flight under uneven load, as ratios to a ceiling.
 */
import { Server } from '@srpc/server'
import { Backoff } from '../src/backoff'
import { Pool, type PoolOptions } from '../src/index'
import type { BackoffSchedule } from '../src/options'
import { FaultProxy } from './fault-proxy'
import { certificates, sleep } from './harness'

const SCHEDULES: Record<string, BackoffSchedule> = {
  'gRPC: 1 s ×1.6 ≤120 s': { initial: 1000, multiplier: 1.6, max: 120_000 },
  '1 s ×1.6 ≤10 s': { initial: 1000, multiplier: 1.6, max: 10_000 },
  '250 ms ×1.6 ≤10 s': { initial: 250, multiplier: 1.6, max: 10_000 },
  '100 ms ×1.6 ≤10 s': { initial: 100, multiplier: 1.6, max: 10_000 },
  '100 ms ×1.6 ≤30 s': { initial: 100, multiplier: 1.6, max: 30_000 },
}

/** Connection lost at 0 and redialled at once; the server is back at `outage` ms. */
function simulate(schedule: BackoffSchedule, outage: number, runs = 20_000) {
  const extra: number[] = []
  let attempts = 0
  for (let r = 0; r < runs; r++) {
    const backoff = new Backoff(schedule)
    let t = 0
    attempts++
    while (t < outage) {
      t += backoff.next()
      if (t < outage) attempts++
    }
    extra.push(t - outage)
  }
  extra.sort((a, b) => a - b)
  return {
    mean: extra.reduce((a, b) => a + b, 0) / runs,
    p99: extra[Math.floor(runs * 0.99)],
    attempts: attempts / runs,
  }
}

function backoffTable(): void {
  const outages = [500, 2000, 5000, 15_000, 60_000, 300_000]
  console.log(
    '\n## Reconnect schedule: extra downtime after the server is back (mean / p99, ms), attempts per slot',
  )
  console.log(
    `| schedule | ${outages.map((o) => `${o / 1000} s outage`).join(' | ')} | steady attempts/min/slot |`,
  )
  console.log(`|---|${outages.map(() => '---').join('|')}|---|`)
  for (const [name, schedule] of Object.entries(SCHEDULES)) {
    const cells = outages.map((outage) => {
      const { mean, p99, attempts } = simulate(schedule, outage)
      return `${Math.round(mean)} / ${Math.round(p99)} (${attempts.toFixed(1)})`
    })
    const steady = 60_000 / ((schedule.initial + schedule.max) / 2)
    console.log(`| ${name} | ${cells.join(' | ')} | ${steady.toFixed(1)} |`)
  }
}

async function startServer(address: string): Promise<{ server: Server; port: number }> {
  const { serverOptions } = await certificates()
  const server = new Server({ address, tls: serverOptions })
  server.mux.handle('/x', () => 'x')
  const { port } = await server.listen()
  return { server, port }
}

async function restartTable(): Promise<void> {
  const { clientOptions } = await certificates()
  console.log('\n## Server restart on loopback, pool size 4: ready after the server is back (ms), attempts')
  console.log('| schedule | outage | back → ready (mean of 3) | attempts during outage |')
  console.log('|---|---|---|---|')
  for (const [name, backoff] of Object.entries(SCHEDULES)) {
    for (const outage of [1000, 4000]) {
      const delays: number[] = []
      let attempts = 0
      for (let run = 0; run < 3; run++) {
        let { server, port } = await startServer('127.0.0.1:0')
        const pool = new Pool({ address: `127.0.0.1:${port}`, tls: clientOptions, size: 4, backoff })
        pool.on('error', () => {})
        pool.on('reconnecting', () => attempts++)
        await pool.connect()
        await server.destroy()
        await sleep(outage)
        ;({ server } = await startServer(`127.0.0.1:${port}`))
        const back = performance.now()
        while (pool.state !== 'ready') await sleep(1)
        delays.push(performance.now() - back)
        await pool.close()
        await server.destroy()
      }
      const mean = delays.reduce((a, b) => a + b, 0) / delays.length
      console.log(`| ${name} | ${outage / 1000} s | ${Math.round(mean)} | ${(attempts / 3).toFixed(1)} |`)
    }
  }
}

interface LoadResult {
  calls: number
  p50: number
  p99: number
}

/** `concurrency` callers for `ms`, each call picked by `pick` (route and payload). */
async function closedLoop(
  pool: Pool,
  ms: number,
  concurrency: number,
  pick: (i: number) => [string, string],
): Promise<LoadResult> {
  const latencies: number[] = []
  const until = performance.now() + ms
  let n = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        const [route, payload] = pick(n++)
        const started = performance.now()
        await pool.call(route, payload, { timeout: 10_000 })
        if (route === '/small') latencies.push(performance.now() - started)
      }
    }),
  )
  latencies.sort((a, b) => a - b)
  return {
    calls: latencies.length,
    p50: latencies[Math.floor(latencies.length / 2)],
    p99: latencies[Math.floor(latencies.length * 0.99)],
  }
}

async function balancingTable(): Promise<void> {
  const { serverOptions, clientOptions } = await certificates()
  const servers: Server[] = []
  const proxies: FaultProxy[] = []
  const server = async () => {
    const s = new Server({ address: '127.0.0.1:0', tls: serverOptions })
    s.mux.handle('/small', () => 'ok')
    s.mux.handle('/big', () => Buffer.alloc(1024 * 1024, 7))
    s.mux.handle('/slow', async () => {
      await sleep(50)
      return 'ok'
    })
    servers.push(s)
    return `127.0.0.1:${(await s.listen()).port}`
  }
  const pool = async (address: string | string[], options: Partial<PoolOptions>) => {
    const target = typeof address === 'string' ? { address } : { addresses: address }
    const p = new Pool({ ...target, tls: clientOptions, ...options })
    await p.connect()
    return p
  }
  const DURATION = 3000
  const rows: string[] = []
  const row = (scenario: string, policy: string, r: LoadResult, ceiling: LoadResult) =>
    rows.push(
      `| ${scenario} | ${policy} | ${Math.round(r.calls / (DURATION / 1000))} (${(r.calls / ceiling.calls).toFixed(2)}) | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`,
    )

  // A: two servers, one 5 ms further away each way. Ceiling: the near server alone.
  const near = await server()
  const far = await server()
  const farProxy = await new FaultProxy(Number(far.split(':')[1])).start()
  proxies.push(farProxy)
  farProxy.latency(5)
  const small = (): [string, string] => ['/small', '']
  const nearOnly = await pool(near, { size: 2 })
  const ceilingA = await closedLoop(nearOnly, DURATION, 32, small)
  await nearOnly.close()
  row('A: one server 5 ms farther', 'ceiling (near server only)', ceilingA, ceilingA)
  for (const balancing of ['round-robin', 'least-in-flight'] as const) {
    const p = await pool([near, farProxy.address], { size: 4, balancing })
    row('A: one server 5 ms farther', balancing, await closedLoop(p, DURATION, 32, small), ceilingA)
    await p.close()
  }

  // B: one server, 1 call in 20 returns 1 MiB; small calls behind it on the same socket wait.
  const mixed = (i: number): [string, string] => (i % 20 === 0 ? ['/big', ''] : ['/small', ''])
  const solo = await server()
  const ceilingPool = await pool(solo, { size: 4 })
  const ceilingB = await closedLoop(ceilingPool, DURATION, 32, small)
  await ceilingPool.close()
  row('B: 5% of calls return 1 MiB', 'ceiling (small calls only)', ceilingB, ceilingB)
  for (const balancing of ['round-robin', 'least-in-flight'] as const) {
    const p = await pool(solo, { size: 4, balancing })
    row('B: 5% of calls return 1 MiB', balancing, await closedLoop(p, DURATION, 32, mixed), ceilingB)
    await p.close()
  }

  // C: one server limiting each connection to 8 calls in flight, 1 call in 10 takes 50 ms.
  const limited = new Server({ address: '127.0.0.1:0', tls: serverOptions, maxConcurrentStreams: 8 })
  limited.mux.handle('/small', () => 'ok')
  limited.mux.handle('/slow', async () => {
    await sleep(50)
    return 'ok'
  })
  servers.push(limited)
  const limitedAddress = `127.0.0.1:${(await limited.listen()).port}`
  const slowMix = (i: number): [string, string] => (i % 10 === 0 ? ['/slow', ''] : ['/small', ''])
  const ceilingC = await closedLoop(await pool(limitedAddress, { size: 4 }), DURATION, 24, small)
  row('C: limit 8/conn, 10% take 50 ms', 'ceiling (small calls only)', ceilingC, ceilingC)
  for (const balancing of ['round-robin', 'least-in-flight'] as const) {
    const p = await pool(limitedAddress, { size: 4, balancing })
    row('C: limit 8/conn, 10% take 50 ms', balancing, await closedLoop(p, DURATION, 24, slowMix), ceilingC)
    await p.close()
  }

  console.log(
    `\n## Balancing, 3 s closed loop (32 callers; C: 24) — small calls/s (ratio to ceiling), latency ms`,
  )
  console.log('| scenario | policy | small calls/s | p50 | p99 |')
  console.log('|---|---|---|---|---|')
  for (const r of rows) console.log(r)
  await Promise.all(proxies.map((p) => p.stop()))
  await Promise.all(servers.map((s) => s.destroy()))
}

const which = process.argv[2]
if (!which || which === 'backoff') backoffTable()
if (!which || which === 'restart') await restartTable()
if (!which || which === 'balancing') await balancingTable()
process.exit(0)
