import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Code, type Pool } from '../src/index'
import { certificates, codeOf, Harness, sleep } from './harness'

/**
 * A real cluster: `fixtures/cluster-app.mjs` runs runCluster from the built @srpc/server in a
 * child process (the primary), which forks the workers; the pools here reach them over TLS.
 */
const APP = new URL('./fixtures/cluster-app.mjs', import.meta.url).pathname

interface Event {
  event: string
  pid?: number
  pids?: number[]
  [key: string]: unknown
}

class ClusterProcess {
  readonly child: ChildProcess
  readonly events: Event[] = []
  /** Every worker pid the primary reported, to make sure none outlives the test. */
  readonly workerPids = new Set<number>()
  readonly exited: Promise<number | null>
  stderr = ''
  #buffer = ''

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, [APP], { env: { ...process.env, ...env }, stdio: 'pipe' })
    this.child.stdout?.setEncoding('utf8')
    this.child.stdout?.on('data', (chunk: string) => {
      this.#buffer += chunk
      let newline = this.#buffer.indexOf('\n')
      while (newline >= 0) {
        const line = this.#buffer.slice(0, newline)
        this.#buffer = this.#buffer.slice(newline + 1)
        newline = this.#buffer.indexOf('\n')
        const event = JSON.parse(line) as Event
        this.events.push(event)
        if (event.pid) this.workerPids.add(event.pid)
        for (const pid of event.pids ?? []) this.workerPids.add(pid)
      }
    })
    this.child.stderr?.setEncoding('utf8')
    this.child.stderr?.on('data', (chunk: string) => {
      this.stderr += chunk
    })
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)))
  }

  /** The first event (from `from` on) matching, waiting at most `ms`. */
  async next(match: (e: Event) => boolean, ms = 20_000, from = 0): Promise<Event> {
    const deadline = Date.now() + ms
    while (Date.now() < deadline) {
      const found = this.events.slice(from).find(match)
      if (found) return found
      if (this.child.exitCode !== null) break
      await sleep(20)
    }
    throw new Error(
      `no matching event within ${ms} ms; events: ${JSON.stringify(this.events)}; stderr: ${this.stderr}`,
    )
  }

  command(line: string): void {
    this.child.stdin?.write(`${line}\n`)
  }

  /** Kills the primary and every worker it reported, whatever state they are in. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL')
    await this.exited
    for (const pid of this.workerPids) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

const clusters: ClusterProcess[] = []
const dirs: string[] = []
const h = new Harness()
afterEach(async () => {
  await h.cleanup()
  await Promise.all(clusters.splice(0).map((c) => c.kill()))
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

async function startCluster(
  workers: number,
  env: Record<string, string> = {},
): Promise<{ cluster: ClusterProcess; address: string; ready: Event }> {
  const { serverOptions } = await certificates()
  const port = await freePort()
  const cluster = new ClusterProcess({
    SRPC_TEST_KEY: String(serverOptions.key),
    SRPC_TEST_CERT: String(serverOptions.cert),
    SRPC_TEST_PORT: String(port),
    SRPC_TEST_WORKERS: String(workers),
    ...env,
  })
  clusters.push(cluster)
  const ready = await cluster.next((e) => e.event === 'ready', 15_000)
  return { cluster, address: `127.0.0.1:${port}`, ready }
}

/** Calls `route` from `loops` concurrent loops until `stop` aborts; counts what succeeded and failed. */
function steadyLoad(pool: Pool, route: string, loops: number, stop: AbortSignal) {
  const result = { ok: 0, failed: [] as unknown[], pids: new Set<string>() }
  const done = Promise.all(
    Array.from({ length: loops }, async () => {
      // Bounded: at most 10,000 calls per loop even if `stop` never came.
      for (let i = 0; i < 10_000 && !stop.aborted; i++) {
        try {
          result.pids.add(String(await pool.call(route)))
          result.ok++
        } catch (err) {
          result.failed.push(err)
        }
      }
    }),
  )
  return { result, done }
}

describe('runCluster', { timeout: 60_000 }, () => {
  it('spreads connections over the workers, which share one port', async () => {
    const { cluster, address, ready } = await startCluster(2)
    expect(ready.health).toBe('SERVING')
    expect(ready.pids).toHaveLength(2)
    const pool = await h.pool(address, { size: 4 })
    const pids = new Set<string>()
    for (let i = 0; i < 40; i++) pids.add(String(await pool.call('/pid')))
    expect([...pids].map(Number).sort()).toEqual([...(ready.pids ?? [])].sort())

    cluster.command('stats')
    const { workers } = (await cluster.next((e) => e.event === 'stats')) as unknown as {
      workers: { pid: number; state: string; calls: number; connections: number; restarts: number }[]
    }
    expect(workers.map((w) => w.state)).toEqual(['listening', 'listening'])
    expect(workers.reduce((sum, w) => sum + w.calls, 0)).toBe(40)
    expect(workers.reduce((sum, w) => sum + w.connections, 0)).toBe(4)
    for (const w of workers) expect(w.calls).toBeGreaterThan(0)
  })

  it('rolls the workers on SIGHUP with no failed call from a default pool', async () => {
    const { cluster, address, ready } = await startCluster(2, { SRPC_TEST_SLOW_MS: '20' })
    const old = ready.pids ?? []
    const pool = await h.pool(address)
    const chat = await h.pool(address)
    const session = await chat.createBidirectionalSession('/chat')
    await session.send('hello')
    expect(String(await session.receive())).toBe('hello')

    const stop = new AbortController()
    const load = steadyLoad(pool, '/slow', 8, stop.signal)
    await sleep(200)
    const from = cluster.events.length
    cluster.child.kill('SIGHUP')
    for (const pid of old) await cluster.next((e) => e.event === 'exit' && e.pid === pid, 15_000, from)
    await sleep(300)
    stop.abort()
    await load.done

    expect(load.result.failed).toEqual([])
    expect(load.result.ok).toBeGreaterThan(50)
    const fresh = cluster.events.slice(from).filter((e) => e.event === 'listening')
    expect(fresh).toHaveLength(2)
    // Calls reached the new workers too, and the cluster never stopped serving.
    expect(fresh.some((e) => load.result.pids.has(String(e.pid)))).toBe(true)
    expect(cluster.events.slice(from).some((e) => e.event === 'health')).toBe(false)
    // The session's worker drained: the session ended cleanly or with a retry-safe code.
    const end = await session.receive().then(
      () => undefined,
      (err: unknown) => err,
    )
    if (end !== undefined) expect(await codeOf(Promise.reject(end))).toBe(Code.UNAVAILABLE)
    for (const pid of old) expect(alive(pid)).toBe(false)
  })

  it('rolls the workers when restart() is called on the primary', async () => {
    const { cluster, ready } = await startCluster(2)
    cluster.command('restart')
    await cluster.next((e) => e.event === 'restarted' || e.event === 'error', 15_000)
    expect(cluster.events.some((e) => e.event === 'error')).toBe(false)
    for (const pid of ready.pids ?? []) expect(alive(pid)).toBe(false)
    cluster.command('stats')
    const { workers } = (await cluster.next((e) => e.event === 'stats')) as unknown as {
      workers: { restarts: number; state: string }[]
    }
    expect(workers.map((w) => [w.state, w.restarts])).toEqual([
      ['listening', 1],
      ['listening', 1],
    ])
  })

  it('stops a rolling restart at a new worker that cannot start; the old one keeps serving', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'srpc-cluster-'))
    dirs.push(dir)
    const marker = join(dir, 'marker')
    const { cluster, address, ready } = await startCluster(1, { SRPC_TEST_MARKER: marker })
    writeFileSync(marker, 'x')
    cluster.command('restart')
    const failed = await cluster.next((e) => e.event === 'error' || e.event === 'restarted', 15_000)
    expect(failed.event).toBe('error')
    expect(failed.message).toMatch(/rolling restart stopped at slot 0: the new worker did not start/)
    expect(failed.message).toMatch(/marker present: refusing to start/)
    const pool = await h.pool(address)
    expect(Number(await pool.call('/pid'))).toBe(ready.pids?.[0])
    expect(cluster.events.some((e) => e.event === 'health')).toBe(false)
    expect(cluster.events.some((e) => e.event === 'crash')).toBe(false)
  })

  it('replaces a worker that crashes', async () => {
    const { cluster, address, ready } = await startCluster(1)
    const pool = await h.pool(address)
    expect(String(await pool.call('/crash'))).toBe('bye')
    const crash = await cluster.next((e) => e.event === 'crash')
    expect(crash.pid).toBe(ready.pids?.[0])
    expect(crash.message).toMatch(/exited with code 3/)
    const replaced = await cluster.next((e) => e.event === 'listening' && e.pid !== ready.pids?.[0])
    expect(Number(await pool.call('/pid', '', { waitForReady: true, timeout: 15_000 }))).toBe(replaced.pid)
    // With its only worker gone, the cluster was not serving for a while, and is again.
    const health = cluster.events.filter((e) => e.event === 'health').map((e) => e.status)
    expect(health).toEqual(['NOT_SERVING', 'SERVING'])
  })

  it('stops replacing workers in a crash loop, and reports it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'srpc-cluster-'))
    dirs.push(dir)
    const { cluster, address } = await startCluster(1, {
      SRPC_TEST_MARKER: join(dir, 'marker'),
      SRPC_TEST_MAX_RESTARTS: '2',
    })
    const pool = await h.pool(address)
    await pool.call('/crash')
    const loop = await cluster.next((e) => e.event === 'crashloop')
    expect(loop.message).toMatch(/crash loop: 3 worker crashes/)
    expect(loop.message).toMatch(/marker present: refusing to start/)
    expect(loop.health).toBe('NOT_SERVING')
    // Two replacements were tried, then none: the primary stays up and stops forking.
    await sleep(500)
    expect(cluster.events.filter((e) => e.event === 'crash')).toHaveLength(2)
    expect(cluster.events.filter((e) => e.event === 'exit')).toHaveLength(3)
    expect(cluster.child.exitCode).toBe(null)
  })

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'shuts down gracefully on %s: calls in flight finish, every process exits',
    async (signal) => {
      const { cluster, address, ready } = await startCluster(2, { SRPC_TEST_SLOW_MS: '500' })
      const pool = await h.pool(address, { size: 2 })
      await pool.connect()
      const calls = Array.from({ length: 4 }, () => pool.call('/slow'))
      await sleep(100)
      cluster.child.kill(signal)
      const replies = await Promise.all(calls)
      expect(replies.map((r) => Number(r)).every((pid) => ready.pids?.includes(pid))).toBe(true)
      const close = await cluster.next((e) => e.event === 'close')
      expect(close.health).toBe('NOT_SERVING')
      expect(await cluster.exited).toBe(0)
      for (const pid of ready.pids ?? []) expect(alive(pid)).toBe(false)
    },
  )
})
