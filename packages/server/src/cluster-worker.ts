import cluster from 'node:cluster'
import { isClusterMessage, type ToPrimary, type ToWorker } from './cluster-messages'
import { type ClusterOptions, resolveClusterOptions } from './cluster-options'
import { callsOf, limiterOf, Server } from './server'

/** What `runCluster` returns inside a worker process. */
export interface ClusterWorker {
  readonly role: 'worker'
  /** `cluster.worker.id` (1, 2, … in fork order, never reused). */
  readonly id: number
  /** The server `worker()` returned, listening. */
  readonly server: Server
}

function send(message: ToPrimary): void {
  // The primary may be gone (the channel closes): nothing to tell, the worker exits on 'disconnect'.
  if (process.connected) process.send?.(message, undefined, undefined, () => {})
}

/**
 * The worker half of runCluster: run `worker()`, report listening (or failure) to the primary,
 * answer stats, drain on request or on SIGTERM/SIGINT, and exit once the server has stopped.
 */
export async function runWorker(options: ClusterOptions): Promise<ClusterWorker> {
  const resolved = resolveClusterOptions(options)
  const id = cluster.worker?.id ?? 0
  let server: Server
  try {
    server = await resolved.worker()
    if (!(server instanceof Server)) throw new Error('worker() must return the Server it started')
    if (server.state !== 'listening') throw new Error(`worker() returned a server that is ${server.state}`)
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    send({ srpc: 'failed', message })
    // Let the message reach the primary before going: the exit is what it acts on.
    process.exitCode = 1
    cluster.worker?.disconnect()
    setTimeout(() => process.exit(1), 1000).unref()
    throw err
  }

  let draining = false
  const drain = (timeout: number) => {
    if (draining) return
    draining = true
    server
      .shutdown({ timeout })
      .catch(() => server.destroy())
      .finally(() => process.exit(0))
  }
  process.on('message', (message: unknown) => {
    if (!isClusterMessage<ToWorker>(message)) return
    if (message.srpc === 'drain') drain(message.timeout)
    else if (message.srpc === 'stats') {
      const limiter = limiterOf(server)
      send({
        srpc: 'stats',
        id: message.id,
        connections: server.connections,
        calls: callsOf(server),
        active: limiter.active,
        queued: limiter.queued,
      })
    }
  })
  // Ctrl-C reaches the whole process group: drain rather than drop connections.
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    process.on(signal, () => drain(resolved.shutdownTimeout))

  send({ srpc: 'listening' })
  return { role: 'worker', id, server }
}
