import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { appendFileSync, mkdirSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type {
  ClientJob,
  FromClient,
  FromServer,
  Metrics,
  ServerJob,
  TargetName,
  ToClient,
  ToServer,
} from './messages'
import { errorMessage } from './util'

const SERVER_SCRIPT = fileURLToPath(new URL('./server-main.js', import.meta.url))
const CLIENT_SCRIPT = fileURLToPath(new URL('./client-main.js', import.meta.url))
const START_TIMEOUT_MS = 20_000
const STOP_TIMEOUT_MS = 8_000
/** How much of a child's output is kept to show when its cell fails. */
const OUTPUT_TAIL = 4096

/** CPU placement: the server on core 0 and the client on core 1 when `taskset` works. */
export interface Placement {
  pinned: boolean
  description: string
  server: string[]
  client: string[]
}

export function detectPlacement(pin: boolean): Placement {
  const cores = availableParallelism()
  const none = (why: string): Placement => ({ pinned: false, description: why, server: [], client: [] })
  if (!pin) return none('not pinned (--no-pin)')
  if (cores < 2) return none(`not pinned: ${cores} core available`)
  const probe = spawnSync('taskset', ['-c', '1', process.execPath, '-e', '0'], { stdio: 'ignore' })
  if (probe.error || probe.status !== 0) return none('not pinned: taskset not available')
  return {
    pinned: true,
    description: 'server on core 0, client on core 1 (taskset)',
    server: ['taskset', '-c', '0'],
    client: ['taskset', '-c', '1'],
  }
}

export type CellStatus = 'ok' | 'failed' | 'n/a'

export interface CellResult {
  scenario: string
  target: TargetName
  rep: number
  status: CellStatus
  metrics?: Metrics
  error?: string
  warnings: string[]
  wallMs: number
}

/** A child process with an IPC channel, its output tail kept for error reports. */
class Child<In, Out> {
  readonly process: ChildProcess
  readonly exited: Promise<number | null>
  #tail = ''
  #exitCode: number | null | undefined

  constructor(prefix: string[], script: string, nodeArgs: string[]) {
    // SRPC_BENCH_NODE_ARGS adds flags to every server and client process, e.g. for profiling:
    // SRPC_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (NODE_OPTIONS refuses --cpu-prof).
    const extra = process.env.SRPC_BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []
    const argv = [...prefix, process.execPath, ...nodeArgs, ...extra, script]
    this.process = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    // SRPC_BENCH_CHILD_LOG=DIR keeps each process's whole output in a file there (e.g. --trace-gc).
    const logDir = process.env.SRPC_BENCH_CHILD_LOG
    if (logDir) mkdirSync(logDir, { recursive: true })
    const logFile = logDir
      ? join(logDir, `${basename(script, '.js')}.${process.hrtime.bigint()}.log`)
      : undefined
    const keep = (chunk: Buffer) => {
      if (logFile) appendFileSync(logFile, chunk)
      this.#tail = (this.#tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL)
    }
    this.process.stdout?.on('data', keep)
    this.process.stderr?.on('data', keep)
    this.exited = new Promise((resolve) => {
      this.process.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal ? -1 : null)
        resolve(this.#exitCode)
      })
      this.process.once('error', (err) => {
        keep(Buffer.from(`spawn failed: ${err.message}\n`))
        this.#exitCode = -1
        resolve(-1)
      })
    })
  }

  get output(): string {
    return this.#tail.trim()
  }

  send(message: In): void {
    if (this.process.connected) this.process.send(message as object)
  }

  onMessage(listener: (message: Out) => void): void {
    this.process.on('message', listener as (m: unknown) => void)
  }

  /** Waits for the first message `pick` accepts; rejects if the process exits or time runs out. */
  waitFor<T>(pick: (message: Out) => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      let done = false
      const finish = (settle: () => void) => {
        if (done) return
        done = true
        clearTimeout(timer)
        this.process.off('message', onMessage)
        settle()
      }
      const onMessage = (message: unknown) => {
        try {
          const value = pick(message as Out)
          if (value !== undefined) finish(() => resolve(value))
        } catch (err) {
          finish(() => reject(err))
        }
      }
      const timer = setTimeout(
        () => finish(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`))),
        timeoutMs,
      )
      this.process.on('message', onMessage)
      this.exited.then((code) => {
        // A message sent just before exit may still be on its way: give it a turn to arrive.
        setTimeout(() => {
          finish(() => reject(new Error(`${what}: process exited with code ${code}${this.#detail()}`)))
        }, 20)
      })
    })
  }

  #detail(): string {
    return this.output ? `\n${indent(this.output)}` : ''
  }

  /** Waits for exit, then kills it if it did not go by itself. */
  async reap(timeoutMs: number): Promise<void> {
    if (this.#exitCode !== undefined) return
    let timer: NodeJS.Timeout | undefined
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.process.kill('SIGKILL')
        resolve()
      }, timeoutMs)
    })
    await Promise.race([this.exited.then(() => {}), killed])
    clearTimeout(timer)
    await this.exited
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    | ${line}`)
    .join('\n')
}

export interface CellPlan {
  scenario: string
  target: TargetName
  rep: number
  server: ServerJob
  client: Omit<ClientJob, 'port'>
  timeoutMs: number
}

/**
 * Runs one cell: a fresh server process, then a fresh client process that measures and reports.
 * Never throws: whatever goes wrong (a wrong byte, a crash, a hang) becomes a failed cell.
 */
export async function runCell(plan: CellPlan, placement: Placement): Promise<CellResult> {
  const started = performance.now()
  const warnings: string[] = []
  // Both processes start at once (Node and module loading take a good part of a quick cell);
  // the client only gets its job once the server listens.
  const server = new Child<ToServer, FromServer>(placement.server, SERVER_SCRIPT, ['--expose-gc'])
  const client = new Child<ToClient, FromClient>(placement.client, CLIENT_SCRIPT, [])
  server.onMessage((message) => {
    if (message.type === 'warning' && warnings.length < 20) warnings.push(message.message)
  })
  let outcome: Pick<CellResult, 'status' | 'metrics' | 'error'>
  try {
    outcome = await measure(plan, server, client)
  } finally {
    await client.reap(5000)
    server.send({ type: 'stop' })
    await server
      .waitFor((m) => (m.type === 'stopped' ? true : undefined), STOP_TIMEOUT_MS, 'stop')
      .catch(() => {})
    await server.reap(2000)
  }
  return {
    scenario: plan.scenario,
    target: plan.target,
    rep: plan.rep,
    ...outcome,
    warnings,
    wallMs: performance.now() - started,
  }
}

async function measure(
  plan: CellPlan,
  server: Child<ToServer, FromServer>,
  client: Child<ToClient, FromClient>,
): Promise<Pick<CellResult, 'status' | 'metrics' | 'error'>> {
  let serverDied: string | undefined
  let finished = false
  server.exited.then((code) => {
    if (finished) return
    serverDied = `the server process exited (code ${code}) during the run${server.output ? `\n${indent(server.output)}` : ''}`
    client.process.kill('SIGKILL')
  })
  try {
    server.send({ type: 'start', job: plan.server })
    const port = await server.waitFor(
      (m) => {
        if (m.type === 'failed') throw new Error(m.message)
        return m.type === 'listening' ? m.port : undefined
      },
      START_TIMEOUT_MS,
      `${plan.target} server start`,
    )
    client.onMessage((message) => {
      if (message.type !== 'rss-request') return
      server.send({ type: 'rss' })
      server
        .waitFor((m) => (m.type === 'rss' ? m.rss : undefined), 10_000, 'server RSS')
        .then((rss) => client.send({ type: 'rss', rss }))
        .catch(() => {})
    })
    client.send({ type: 'run', job: { ...plan.client, port } })
    const outcome = await client
      .waitFor((m) => (m.type === 'result' || m.type === 'failed' ? m : undefined), plan.timeoutMs, 'client')
      .catch((err: Error) => ({ type: 'failed' as const, message: serverDied ?? err.message }))
    if (outcome.type === 'failed') return { status: 'failed', error: outcome.message }
    if (outcome.failure !== undefined)
      return { status: 'failed', metrics: outcome.metrics, error: outcome.failure }
    return { status: 'ok', metrics: outcome.metrics }
  } catch (err) {
    return { status: 'failed', error: serverDied ?? errorMessage(err) }
  } finally {
    finished = true
  }
}
