import { AsyncResource } from 'node:async_hooks'
import { Code, RpcError } from '@srpc/protocol'

export interface Job {
  /** Runs the job; must call `release` exactly once when it is done. */
  start(release: () => void): void
  /** Called instead of start when the job cannot run (queue shut down, deadline passed). */
  reject(error: RpcError): void
  /** True when nobody waits for the job any more: it is skipped without running. */
  readonly abandoned: boolean
  /** performance.now() time after which running the job is pointless, if any. */
  readonly deadline: number | undefined
}

/**
 * Bounds how many handlers run at once (`workers`: slots on the event loop, not threads) and
 * queues the rest first-in first-out up to `maxQueue`. Past that, `submit` refuses with
 * RESOURCE_EXHAUSTED at once: load is shed instead of buffered. A queued job whose deadline
 * passed is rejected with DEADLINE_EXCEEDED instead of run.
 */
export class ConcurrencyLimiter {
  readonly workers: number
  readonly maxQueue: number
  #active = 0
  #queue: Job[] = []
  #head = 0
  #release = () => this.#onRelease()

  constructor(workers: number, maxQueue: number) {
    this.workers = workers
    this.maxQueue = maxQueue
  }

  get active(): number {
    return this.#active
  }

  get queued(): number {
    return this.#queue.length - this.#head
  }

  /** Runs the job now, queues it, or throws RESOURCE_EXHAUSTED when the queue is full. */
  submit(job: Job): void {
    if (this.#active < this.workers) {
      this.#active++
      job.start(this.#release)
      return
    }
    if (this.queued >= this.maxQueue) {
      throw new RpcError(
        Code.RESOURCE_EXHAUSTED,
        `server busy: ${this.workers} workers busy and ${this.queued} calls queued`,
      )
    }
    this.#queue.push(new QueuedJob(job))
  }

  #onRelease(): void {
    this.#active--
    if (this.#head >= this.#queue.length) return
    const now = performance.now()
    while (this.#active < this.workers && this.#head < this.#queue.length) {
      const job = this.#queue[this.#head]
      this.#queue[this.#head++] = undefined as unknown as Job
      if (this.#head === this.#queue.length) {
        this.#queue = []
        this.#head = 0
      } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head)
        this.#head = 0
      }
      if (job.abandoned) continue
      if (job.deadline !== undefined && job.deadline <= now) {
        job.reject(new RpcError(Code.DEADLINE_EXCEEDED, 'deadline passed while the call was queued'))
        continue
      }
      this.#active++
      job.start(this.#release)
    }
  }
}

/**
 * A job that waits in the queue keeps the async context it was submitted in (AsyncLocalStorage,
 * so OpenTelemetry's active span): its handler runs there, not in the context of whichever call
 * freed the worker. Only queued jobs pay for it.
 */
class QueuedJob implements Job {
  readonly #job: Job
  readonly #scope = new AsyncResource('srpc.QueuedCall')

  constructor(job: Job) {
    this.#job = job
  }

  get abandoned(): boolean {
    return this.#job.abandoned
  }

  get deadline(): number | undefined {
    return this.#job.deadline
  }

  start(release: () => void): void {
    this.#scope.runInAsyncScope(this.#job.start, this.#job, release)
  }

  reject(error: RpcError): void {
    this.#scope.runInAsyncScope(this.#job.reject, this.#job, error)
  }
}

/** @deprecated The seed's name for {@link ConcurrencyLimiter}; same class. */
export const WorkerPool = ConcurrencyLimiter
/** @deprecated The seed's name for {@link ConcurrencyLimiter}. */
export type WorkerPool = ConcurrencyLimiter
