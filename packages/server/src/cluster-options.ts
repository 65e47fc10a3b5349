import { availableParallelism } from 'node:os'
import { invalidOption, nonNegativeIntOption, positiveIntOption } from '@srpc/protocol'
import { DEFAULT_SHUTDOWN_TIMEOUT } from './options'
import type { Server } from './server'

/** A new worker must be listening within this (ms), or it counts as failed and is killed. */
export const DEFAULT_CLUSTER_START_TIMEOUT = 30_000
/** Delay before a crashed worker is replaced, doubling per recent crash up to `max` (ms). */
export const DEFAULT_CLUSTER_RESTART_BACKOFF = { initial: 500, max: 10_000 }
/** More crashes than this within `restartWindow` is a crash loop: crashed workers are no longer replaced. */
export const DEFAULT_CLUSTER_MAX_RESTARTS = 5
/** The window over which crashes count towards `maxRestarts` (ms). */
export const DEFAULT_CLUSTER_RESTART_WINDOW = 60_000

export interface ClusterOptions {
  /** Worker processes; default `os.availableParallelism()`. */
  workers?: number
  /**
   * Runs in each worker process: builds a Server, registers its routes, `await server.listen()`
   * and returns it. Workers listening on the same address share its port (see runCluster). A
   * throw, or a server that is not listening, fails the worker (exit code 1).
   */
  worker: () => Server | Promise<Server>
  /** Grace a draining worker's server gets for calls in flight (`server.shutdown({ timeout })`), ms. */
  shutdownTimeout?: number
  /** Time a new worker has to be listening, ms. */
  startTimeout?: number
  /** Delay before a crashed worker is replaced: `initial` ms, doubling per recent crash, up to `max` ms. */
  restartBackoff?: { initial?: number; max?: number }
  /** Crashes within `restartWindow` beyond which crashed workers are no longer replaced (crash loop). */
  maxRestarts?: number
  /** Window over which crashes count, ms. */
  restartWindow?: number
  /**
   * Handle signals on the primary: SIGHUP rolls the workers, SIGTERM and SIGINT shut the cluster
   * down gracefully. `false` leaves signals to you (call `restart()` and `shutdown()`). Default true.
   */
  signals?: boolean
}

export interface ResolvedClusterOptions {
  workers: number
  worker: () => Server | Promise<Server>
  shutdownTimeout: number
  startTimeout: number
  restartBackoff: { initial: number; max: number }
  maxRestarts: number
  restartWindow: number
  signals: boolean
}

export function resolveClusterOptions(options: ClusterOptions): ResolvedClusterOptions {
  if (!options || typeof options !== 'object') invalidOption('options', 'must be an object')
  if (typeof options.worker !== 'function')
    invalidOption('worker', 'must be a function that starts a Server and returns it')
  if (options.signals !== undefined && typeof options.signals !== 'boolean')
    invalidOption('signals', 'must be a boolean')
  const backoff = options.restartBackoff ?? {}
  if (typeof backoff !== 'object' || backoff === null) invalidOption('restartBackoff', 'must be an object')
  const initial = positiveIntOption(
    'restartBackoff.initial',
    backoff.initial,
    DEFAULT_CLUSTER_RESTART_BACKOFF.initial,
  )
  const max = positiveIntOption('restartBackoff.max', backoff.max, DEFAULT_CLUSTER_RESTART_BACKOFF.max)
  if (max < initial) invalidOption('restartBackoff.max', 'must not be below restartBackoff.initial')
  return {
    workers: positiveIntOption('workers', options.workers, availableParallelism()),
    worker: options.worker,
    shutdownTimeout: nonNegativeIntOption(
      'shutdownTimeout',
      options.shutdownTimeout,
      DEFAULT_SHUTDOWN_TIMEOUT,
    ),
    startTimeout: positiveIntOption('startTimeout', options.startTimeout, DEFAULT_CLUSTER_START_TIMEOUT),
    restartBackoff: { initial, max },
    maxRestarts: nonNegativeIntOption('maxRestarts', options.maxRestarts, DEFAULT_CLUSTER_MAX_RESTARTS),
    restartWindow: positiveIntOption('restartWindow', options.restartWindow, DEFAULT_CLUSTER_RESTART_WINDOW),
    signals: options.signals ?? true,
  }
}
