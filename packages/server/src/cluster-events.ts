/** What the cluster primary reports: health, worker identities and stats, events. */
import type { RpcError } from '@srpc/protocol'

/** SERVING while at least one worker listens, NOT_SERVING while none does (gRPC health's names). */
export type ClusterHealth = 'SERVING' | 'NOT_SERVING'
export type ClusterWorkerState = 'starting' | 'listening' | 'draining' | 'exited'

/** Who a worker is, in events. */
export interface ClusterWorkerInfo {
  /** Position 0…workers-1; a replacement takes its predecessor's slot. */
  readonly slot: number
  /** `worker.id` from node:cluster. */
  readonly id: number
  readonly pid: number | undefined
}

export interface ClusterWorkerStats extends ClusterWorkerInfo {
  readonly state: ClusterWorkerState
  /** Times this slot's worker was replaced (after a crash or by a rolling restart). */
  readonly restarts: number
  /** Epoch ms the worker was forked. */
  readonly startedAt: number
  /** From the worker over IPC; undefined when it did not answer in time (starting, busy, gone). */
  readonly connections: number | undefined
  /** Calls its server has started since it began. */
  readonly calls: number | undefined
  /** Handlers running and queued in its concurrency limiter. */
  readonly active: number | undefined
  readonly queued: number | undefined
}

export interface ClusterEvents {
  /** The aggregated health changed. */
  health: [status: ClusterHealth]
  /** A worker's server is listening. */
  listening: [worker: ClusterWorkerInfo]
  /** A worker process ended (drained, failed to start or crashed). */
  exit: [worker: ClusterWorkerInfo, code: number | null, signal: string | null]
  /** A worker died unasked; a replacement starts in `delay` ms. */
  crash: [worker: ClusterWorkerInfo, error: RpcError, delay: number]
  /** Too many crashes in the window: crashed workers are no longer replaced until `restart()`. */
  crashloop: [error: RpcError]
  /** A rolling restart began (`restart()` or SIGHUP). */
  restarting: []
  /** A rolling restart finished: every slot runs a new worker. */
  restarted: []
  /** A restart or shutdown started by a signal failed (nobody else holds its promise). */
  error: [error: Error]
  /** The cluster has shut down: every worker has exited. */
  close: []
}
