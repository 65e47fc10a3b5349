import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { MessagePort } from 'node:worker_threads'
import {
  Code,
  formatMs,
  invalidOption,
  nonNegativeIntOption,
  positiveIntOption,
  RpcError,
} from '@srpc/protocol'
import { Piscina } from 'piscina'

/** Tasks waiting for a thread beyond which `run` refuses with RESOURCE_EXHAUSTED. */
export const DEFAULT_THREADS_MAX_QUEUE = 64
/** Most ms a task may run when its call has no deadline (or a later one). */
export const DEFAULT_TASK_TIMEOUT = 60_000

export interface ThreadPoolOptions {
  /**
   * The module the threads load (a path or a `file:` URL): its default export, or the export
   * named by `name`, runs each task. It gets the task value and returns (or resolves with) the
   * result; both cross threads by structured clone.
   */
  filename: string | URL
  /** Export to call instead of the default one (a `run` may name another). */
  name?: string
  /** Threads kept running while idle; default piscina's (half the cores). */
  minThreads?: number
  /** Most threads; default piscina's (1.5 × `os.availableParallelism()`). For CPU-bound work the core count is a good choice. */
  maxThreads?: number
  /** An idle thread above `minThreads` stops after this, ms. */
  idleTimeout?: number
  /** Tasks waiting for a thread beyond which `run` fails with RESOURCE_EXHAUSTED at once. */
  maxQueue?: number
  /** Most ms a task may run when the call sets no earlier deadline; then it fails DEADLINE_EXCEEDED. */
  timeout?: number
}

/** What `run` reads of a call: `ctx` from @srpc/server fits. */
export interface CallLike {
  /** Aborted when the call is cancelled or otherwise over: the task is aborted too. */
  readonly signal?: AbortSignal
  /** Epoch ms after which nobody waits for the result. */
  readonly deadline?: number
}

export interface RunOptions {
  /** Export of the module to call for this task. */
  name?: string
  /** Moved to the thread instead of copied (ArrayBuffers, MessagePorts). */
  transferList?: readonly (ArrayBuffer | MessagePort)[]
  /** This task's own bound, ms (default the pool's `timeout`); the call's deadline still applies. */
  timeout?: number
}

/**
 * A pool of worker threads (piscina) for the CPU-bound part of handlers, so one heavy call
 * does not stall the event loop every connection shares:
 *
 * ```ts
 * const threads = new ThreadPool({ filename: new URL('./resize.worker.js', import.meta.url), maxThreads: 4 })
 * server.handle('/resize', (ctx) => threads.run(ctx, ctx.payload))
 * ```
 *
 * `run` is bounded three ways: at most `maxQueue` tasks wait (then RESOURCE_EXHAUSTED, load shed
 * at once), a task ends with the call (`ctx.signal`: CANCELLED, or the signal's RpcError) and at
 * its deadline or `timeout` (DEADLINE_EXCEEDED). An aborted task stops: a queued one is dropped,
 * a running one's thread is terminated (piscina starts a fresh one). A task that throws fails
 * with INTERNAL "thread task failed: <its message>".
 */
export class ThreadPool {
  readonly maxQueue: number
  readonly timeout: number
  #piscina: Piscina
  #stopping: Promise<void> | undefined

  constructor(options: ThreadPoolOptions) {
    if (!options || typeof options !== 'object') invalidOption('options', 'must be an object')
    const { filename } = options
    if (typeof filename !== 'string' && !(filename instanceof URL))
      invalidOption('filename', 'must be a path or a file: URL of the task module')
    const path = filename instanceof URL ? fileURLToPath(filename) : filename
    // piscina would only find out in the thread, and the tasks would wait for their timeout.
    if (!existsSync(path)) invalidOption('filename', `names no file: ${path}`)
    this.maxQueue = nonNegativeIntOption('maxQueue', options.maxQueue, DEFAULT_THREADS_MAX_QUEUE)
    this.timeout = positiveIntOption('timeout', options.timeout, DEFAULT_TASK_TIMEOUT)
    this.#piscina = new Piscina({
      filename: path,
      name: options.name ?? 'default',
      minThreads: optionalInt('minThreads', options.minThreads),
      maxThreads: optionalInt('maxThreads', options.maxThreads),
      idleTimeout: optionalInt('idleTimeout', options.idleTimeout),
      // Ours is checked first; piscina's own is a second fence at the same height.
      maxQueue: this.maxQueue,
    })
    // A thread that dies outside a task: the task it ran (if any) rejects; nothing to crash here.
    this.#piscina.on('error', () => {})
  }

  /** Threads running now. */
  get threads(): number {
    return this.#piscina.threads.length
  }

  /** Tasks waiting for a thread. */
  get queued(): number {
    return this.#piscina.queueSize
  }

  /** Tasks finished since the pool started. */
  get completed(): number {
    return this.#piscina.completed
  }

  /** Runs `task` on a thread for `call`; see the class for how it is bounded and how it fails. */
  run<R = unknown>(call: CallLike | undefined, task: unknown, options: RunOptions = {}): Promise<R> {
    if (this.#stopping) return Promise.reject(new RpcError(Code.UNAVAILABLE, 'thread pool is closed'))
    const signal = call?.signal
    if (signal?.aborted) return Promise.reject(cancelled(signal))
    if (this.#piscina.queueSize >= this.maxQueue && this.#piscina.idleThreads === 0) {
      return Promise.reject(
        new RpcError(Code.RESOURCE_EXHAUSTED, `thread pool busy: ${this.#piscina.queueSize} tasks queued`),
      )
    }
    let timeout: number
    try {
      timeout = positiveIntOption('timeout', options.timeout, this.timeout)
    } catch (err) {
      return Promise.reject(err)
    }
    const left = call?.deadline === undefined ? timeout : Math.min(timeout, call.deadline - Date.now())
    if (left <= 0)
      return Promise.reject(new RpcError(Code.DEADLINE_EXCEEDED, 'deadline passed before the task started'))

    const abort = new AbortController()
    const timer = setTimeout(
      () =>
        abort.abort(
          new RpcError(Code.DEADLINE_EXCEEDED, `thread task did not finish within ${formatMs(left)}`),
        ),
      left,
    )
    const onCancel = () => abort.abort(cancelled(signal as AbortSignal))
    signal?.addEventListener('abort', onCancel, { once: true })
    return this.#piscina
      .run(task, {
        signal: abort.signal,
        name: options.name,
        transferList: options.transferList as never,
      })
      .then(
        (result: R) => result,
        (err: unknown) => {
          if (abort.signal.aborted) throw abort.signal.reason
          if (this.#stopping && !isTaskFailure(err))
            throw new RpcError(Code.UNAVAILABLE, 'thread pool is closed', { cause: err })
          throw taskError(err)
        },
      )
      .finally(() => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onCancel)
      })
  }

  /** Refuses new tasks and waits for queued and running ones to finish (piscina's close). Same promise twice. */
  close(): Promise<void> {
    this.#stopping ??= this.#piscina.close()
    return this.#stopping
  }

  /** Terminates every thread now; queued and running tasks fail. Same promise as `close()` once stopping. */
  destroy(): Promise<void> {
    if (this.#stopping === undefined) this.#stopping = this.#piscina.destroy()
    else void this.#piscina.destroy().catch(() => {})
    return this.#stopping
  }
}

function optionalInt(name: string, value: number | undefined): number | undefined {
  return value === undefined ? undefined : positiveIntOption(name, value, 1)
}

function cancelled(signal: AbortSignal): RpcError {
  return RpcError.is(signal.reason) ? signal.reason : new RpcError(Code.CANCELLED, 'call cancelled')
}

/** piscina's own words for a task stopped because the pool is: not the task's failure. */
function isTaskFailure(err: unknown): boolean {
  const message = err instanceof Error ? err.message : ''
  return message !== 'Terminating worker thread' && !(err instanceof Error && err.name === 'AbortError')
}

function taskError(err: unknown): RpcError {
  const message = err instanceof Error ? err.message : String(err)
  if (message === 'Task queue is at limit') {
    return new RpcError(Code.RESOURCE_EXHAUSTED, 'thread pool busy: task queue is full', { cause: err })
  }
  return new RpcError(Code.INTERNAL, `thread task failed: ${message}`, { cause: err })
}
