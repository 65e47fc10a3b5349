import cluster, { type Worker } from 'node:cluster'
import { Code, formatMs, RpcError } from '@srpc/protocol'
import { EventEmitter } from 'eventemitter3'
import type {
  ClusterEvents,
  ClusterHealth,
  ClusterWorkerInfo,
  ClusterWorkerState,
  ClusterWorkerStats,
} from './cluster-events'
import { isClusterMessage, type ToPrimary, type ToWorker } from './cluster-messages'
import type { ResolvedClusterOptions } from './cluster-options'

/** A draining worker still running this long after its grace is killed (ms). */
const KILL_GRACE = 2000
/** A worker that does not answer a stats request within this is reported without numbers (ms). */
const STATS_TIMEOUT = 2000

interface Member extends ClusterWorkerInfo {
  readonly worker: Worker
  state: ClusterWorkerState
  readonly startedAt: number
  /** The primary asked it to go: its exit is no crash. */
  expected: boolean
  /** Settles when it listens; rejects if it fails, exits or times out first. */
  readonly listening: Promise<void>
  readonly exited: Promise<void>
  /** What `worker()` reported when it failed. */
  failure: string | undefined
}

interface Slot {
  readonly index: number
  current: Member | undefined
  restarts: number
  timer: NodeJS.Timeout | undefined
}

/**
 * The primary process of a cluster: forks the workers, replaces crashed ones with backoff (and
 * stops doing so in a crash loop), rolls them one at a time on `restart()`, and drains them all
 * on `shutdown()`. Made by `runCluster()`.
 */
export class ClusterPrimary extends EventEmitter<ClusterEvents> {
  readonly role = 'primary'
  readonly options: ResolvedClusterOptions
  /** Why crashed workers are no longer replaced, after a crash loop. */
  lastError: RpcError | undefined
  #slots: Slot[]
  #members = new Set<Member>()
  #crashes: number[] = []
  #looped = false
  #health: ClusterHealth = 'NOT_SERVING'
  #restarting: Promise<void> | undefined
  #stopping: Promise<void> | undefined
  #startup: { resolve: () => void; reject: (err: Error) => void } | undefined
  #statsSeq = 0
  #statsWaiters = new Map<number, (reply: Extract<ToPrimary, { srpc: 'stats' }>) => void>()
  #signals: [NodeJS.Signals, () => void][] = []
  #closed = false

  constructor(options: ResolvedClusterOptions) {
    super()
    this.options = options
    this.#slots = Array.from({ length: options.workers }, (_, index) => ({
      index,
      current: undefined,
      restarts: 0,
      timer: undefined,
    }))
  }

  get health(): ClusterHealth {
    return this.#health
  }

  get state(): 'running' | 'stopping' | 'closed' {
    if (this.#closed) return 'closed'
    return this.#stopping === undefined ? 'running' : 'stopping'
  }

  /** Forks every worker; resolves once all listen, rejects (after stopping the rest) on a crash loop. */
  async start(): Promise<void> {
    // Round-robin in the primary (the default everywhere but Windows, set here for all): the
    // kernel's choice (SCHED_NONE) tends to pile connections on one or two busy workers.
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_RR
    if (this.options.signals) this.#trapSignals()
    const started = new Promise<void>((resolve, reject) => {
      this.#startup = { resolve, reject }
    })
    for (const slot of this.#slots) slot.current = this.#fork(slot)
    try {
      await started
    } catch (err) {
      await this.shutdown()
      throw err
    }
  }

  /** A snapshot of every worker process, without asking them. */
  get workers(): ClusterWorkerStats[] {
    return [...this.#members].map((m) => this.#statsOf(m, undefined))
  }

  /** Every worker process with its connections and calls, asked over IPC (bounded wait). */
  stats(): Promise<ClusterWorkerStats[]> {
    return Promise.all([...this.#members].map((m) => this.#ask(m)))
  }

  /**
   * Rolling restart: for each slot in turn, start a new worker, wait until it listens, then
   * drain the old one (GOAWAY, `shutdownTimeout` of grace). If a new worker fails to start, the
   * restart stops there and rejects; the old worker keeps serving. Also clears a crash loop.
   * A second call while one runs gets its promise.
   */
  restart(): Promise<void> {
    if (this.#stopping) return Promise.reject(new RpcError(Code.UNAVAILABLE, 'cluster is shutting down'))
    if (this.#restarting === undefined) {
      this.emit('restarting')
      this.#restarting = this.#roll().then(
        () => {
          this.#restarting = undefined
          this.emit('restarted')
        },
        (err: unknown) => {
          this.#restarting = undefined
          throw err
        },
      )
    }
    return this.#restarting
  }

  /**
   * Drains every worker (each server's graceful shutdown with `timeout`, default the
   * `shutdownTimeout` option), kills any still running `timeout` + 2 s later, and resolves once
   * all have exited. Safe to call twice: the same promise.
   */
  shutdown(options: { timeout?: number } = {}): Promise<void> {
    this.#stopping ??= this.#stop(options.timeout ?? this.options.shutdownTimeout)
    return this.#stopping
  }

  async #stop(timeout: number): Promise<void> {
    this.#startup?.reject(new RpcError(Code.UNAVAILABLE, 'cluster is shutting down'))
    for (const slot of this.#slots) clearTimeout(slot.timer)
    await Promise.all([...this.#members].map((m) => this.#drain(m, timeout)))
    for (const [signal, listener] of this.#signals) process.off(signal, listener)
    this.#signals = []
    this.#closed = true
    this.#updateHealth()
    this.emit('close')
  }

  async #roll(): Promise<void> {
    this.#looped = false
    this.#crashes = []
    this.lastError = undefined
    for (const slot of this.#slots) {
      if (this.#stopping)
        throw new RpcError(Code.UNAVAILABLE, 'rolling restart stopped: cluster is shutting down')
      // A replacement pending after a crash would race the new worker for the slot: this is it.
      clearTimeout(slot.timer)
      slot.timer = undefined
      const old = slot.current
      const next = this.#fork(slot)
      try {
        await next.listening
      } catch (err) {
        this.#drain(next, 0)
        const why = err instanceof Error ? err.message : String(err)
        throw new RpcError(
          Code.UNAVAILABLE,
          `rolling restart stopped at slot ${slot.index}: the new worker did not start (${why}); the old one keeps serving`,
          { cause: err },
        )
      }
      // A crash of the old worker meanwhile scheduled a replacement: the new worker is it.
      clearTimeout(slot.timer)
      slot.timer = undefined
      slot.current = next
      if (old !== undefined) {
        slot.restarts++
        await this.#drain(old, this.options.shutdownTimeout)
      }
    }
  }

  #fork(slot: Slot): Member {
    const worker = cluster.fork({ SRPC_CLUSTER_SLOT: String(slot.index) })
    let listened: () => void = () => {}
    let failed: (err: Error) => void = () => {}
    const listening = new Promise<void>((resolve, reject) => {
      listened = resolve
      failed = reject
    })
    listening.catch(() => {}) // read by whoever waits; an unawaited one must not be unhandled
    let exitedResolve: () => void = () => {}
    const member: Member = {
      slot: slot.index,
      id: worker.id,
      pid: worker.process.pid,
      worker,
      state: 'starting',
      startedAt: Date.now(),
      expected: false,
      listening,
      exited: new Promise<void>((resolve) => {
        exitedResolve = resolve
      }),
      failure: undefined,
    }
    this.#members.add(member)
    const startTimer = setTimeout(() => {
      const err = new RpcError(
        Code.DEADLINE_EXCEEDED,
        `worker ${member.pid} was not listening within ${formatMs(this.options.startTimeout)}`,
      )
      member.failure ??= err.message
      failed(err)
      worker.process.kill('SIGKILL')
    }, this.options.startTimeout)
    worker.on('message', (message: unknown) => {
      if (!isClusterMessage<ToPrimary>(message)) return
      if (message.srpc === 'listening' && member.state === 'starting') {
        clearTimeout(startTimer)
        member.state = 'listening'
        listened()
        this.emit('listening', infoOf(member))
        this.#updateHealth()
      } else if (message.srpc === 'failed') {
        member.failure = message.message
      } else if (message.srpc === 'stats') {
        this.#statsWaiters.get(message.id)?.(message)
      }
    })
    // A failed IPC write or kill: the exit that follows is what the primary acts on.
    worker.on('error', (err) => this.emit('error', err))
    worker.once('exit', (code: number | null, signal: string | null) => {
      clearTimeout(startTimer)
      member.state = 'exited'
      this.#members.delete(member)
      failed(new Error(member.failure ?? `exited with ${signal ?? `code ${code}`} before listening`))
      exitedResolve()
      this.emit('exit', infoOf(member), code, signal)
      this.#updateHealth()
      if (slot.current !== member) return
      slot.current = undefined
      if (!member.expected && !this.#stopping) this.#crashed(slot, member, code, signal)
    })
    return member
  }

  #crashed(slot: Slot, member: Member, code: number | null, signal: string | null): void {
    const now = performance.now()
    this.#crashes = this.#crashes.filter((t) => now - t < this.options.restartWindow)
    this.#crashes.push(now)
    const how = signal ?? `code ${code}`
    const error = new RpcError(
      Code.UNAVAILABLE,
      `worker ${member.pid} (slot ${slot.index}) exited with ${how}${member.failure ? `: ${member.failure}` : ''}`,
    )
    if (this.#looped || this.#crashes.length > this.options.maxRestarts) {
      if (this.#looped) return
      this.#looped = true
      for (const s of this.#slots) {
        clearTimeout(s.timer)
        s.timer = undefined
      }
      const loop = new RpcError(
        Code.UNAVAILABLE,
        `crash loop: ${this.#crashes.length} worker crashes within ${formatMs(this.options.restartWindow)}; ` +
          `crashed workers are no longer replaced (last: ${error.message})`,
        { cause: error },
      )
      this.lastError = loop
      if (this.listenerCount('crashloop') === 0) process.emitWarning(loop.message, 'SrpcClusterWarning')
      this.emit('crashloop', loop)
      this.#startup?.reject(loop)
      return
    }
    const { initial, max } = this.options.restartBackoff
    const delay = Math.min(max, initial * 2 ** (this.#crashes.length - 1))
    this.emit('crash', infoOf(member), error, delay)
    slot.timer = setTimeout(() => {
      slot.timer = undefined
      if (this.#stopping || this.#looped || slot.current !== undefined) return
      slot.restarts++
      slot.current = this.#fork(slot)
    }, delay)
  }

  /** Asks `member` to drain; kills it if it is still there `timeout` + KILL_GRACE ms later. */
  async #drain(member: Member, timeout: number): Promise<void> {
    if (member.state === 'exited') return
    member.expected = true
    if (member.state === 'starting') {
      member.worker.process.kill('SIGKILL')
    } else {
      member.state = 'draining'
      this.#updateHealth()
      const message: ToWorker = { srpc: 'drain', timeout }
      if (member.worker.isConnected()) member.worker.send(message, undefined, () => {})
      else member.worker.process.kill('SIGTERM')
    }
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeout + KILL_GRACE)
    })
    if ((await Promise.race([member.exited, late])) === 'late') member.worker.process.kill('SIGKILL')
    clearTimeout(timer)
    await member.exited
  }

  #updateHealth(): void {
    let listening = false
    for (const member of this.#members) if (member.state === 'listening') listening = true
    if (this.#startup && this.#slots.every((s) => s.current?.state === 'listening')) {
      this.#startup.resolve()
      this.#startup = undefined
    }
    const health: ClusterHealth = listening ? 'SERVING' : 'NOT_SERVING'
    if (health === this.#health) return
    this.#health = health
    this.emit('health', health)
  }

  #statsOf(member: Member, reply: Extract<ToPrimary, { srpc: 'stats' }> | undefined): ClusterWorkerStats {
    return {
      ...infoOf(member),
      state: member.state,
      restarts: this.#slots[member.slot].restarts,
      startedAt: member.startedAt,
      connections: reply?.connections,
      calls: reply?.calls,
      active: reply?.active,
      queued: reply?.queued,
    }
  }

  async #ask(member: Member): Promise<ClusterWorkerStats> {
    if (member.state === 'starting' || member.state === 'exited' || !member.worker.isConnected()) {
      return this.#statsOf(member, undefined)
    }
    const id = ++this.#statsSeq
    let timer: NodeJS.Timeout | undefined
    const reply = await new Promise<Extract<ToPrimary, { srpc: 'stats' }> | undefined>((resolve) => {
      this.#statsWaiters.set(id, resolve)
      timer = setTimeout(() => resolve(undefined), STATS_TIMEOUT)
      member.exited.then(() => resolve(undefined))
      const message: ToWorker = { srpc: 'stats', id }
      member.worker.send(message, undefined, () => {})
    })
    clearTimeout(timer)
    this.#statsWaiters.delete(id)
    return this.#statsOf(member, reply)
  }

  #trapSignals(): void {
    const report = (err: unknown) => {
      const error = err instanceof Error ? err : new Error(String(err))
      if (this.listenerCount('error') === 0) process.emitWarning(error.message, 'SrpcClusterWarning')
      else this.emit('error', error)
    }
    const stop = () => {
      // A second signal while draining: stop waiting, kill what is left.
      if (this.#stopping) for (const m of this.#members) m.worker.process.kill('SIGKILL')
      this.shutdown().catch(report)
    }
    this.#signals = [
      ['SIGHUP', () => this.restart().catch(report)],
      ['SIGTERM', stop],
      ['SIGINT', stop],
    ]
    for (const [signal, listener] of this.#signals) process.on(signal, listener)
  }
}

function infoOf(member: Member): ClusterWorkerInfo {
  return { slot: member.slot, id: member.id, pid: member.pid }
}
