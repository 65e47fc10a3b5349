import cluster from 'node:cluster'
import type { ClusterOptions } from './cluster-options'
import { resolveClusterOptions } from './cluster-options'
import { ClusterPrimary } from './cluster-primary'
import { type ClusterWorker, runWorker } from './cluster-worker'

/**
 * Runs `options.worker` in `workers` processes (node:cluster) sharing its listening port.
 *
 * In the primary process it forks the workers and resolves, once all of them listen, with the
 * primary's handle: `health`, `stats()`, `restart()` (rolling, also on SIGHUP) and `shutdown()`
 * (also on SIGTERM and SIGINT). In each worker it runs `worker()` and resolves with its server.
 * Workers re-run the program's main script, so call `runCluster` at its top level.
 *
 * Connections are spread by the primary in round-robin (`cluster.SCHED_RR`) unless
 * `NODE_CLUSTER_SCHED_POLICY` says otherwise: each worker takes the TLS handshake and all the
 * calls of the connections it gets.
 */
export function runCluster(options: ClusterOptions): Promise<ClusterPrimary | ClusterWorker> {
  if (cluster.isWorker) return runWorker(options)
  let primary: ClusterPrimary
  try {
    primary = new ClusterPrimary(resolveClusterOptions(options))
  } catch (err) {
    return Promise.reject(err)
  }
  return primary.start().then(() => primary)
}
