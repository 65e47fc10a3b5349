/**
 * The server process of one benchmark cell: started by the parent, told which target to run over
 * IPC, answers RSS requests, and stops when told to (or when the parent goes away).
 */
import type { FromServer, ServerJob, ToServer } from './messages'
import type { TargetServer } from './targets/server-target'
import { errorMessage } from './util'

const STOP_TIMEOUT_MS = 3000

function send(message: FromServer): void {
  process.send?.(message)
}

const warn = (message: string) => send({ type: 'warning', message })

/** Loads only the target it runs: a broken srpc build must not take the reference cells down with it. */
async function start(job: ServerJob): Promise<TargetServer> {
  switch (job.target) {
    case 'raw':
      return (await import('./targets/raw-server')).startRawServer(job, warn)
    case 'srpc':
      return (await import('./targets/srpc-server')).startSrpcServer(job, warn)
    case 'grpc':
      return (await import('./targets/grpc-server')).startGrpcServer(job, warn)
  }
}

function rss(): number {
  // Collect garbage first (when --expose-gc is on) so RSS reflects live state, not pending garbage.
  const gc = (globalThis as { gc?: () => void }).gc
  gc?.()
  gc?.()
  return process.memoryUsage.rss()
}

let server: TargetServer | undefined

process.on('message', (message: ToServer) => {
  switch (message.type) {
    case 'start':
      start(message.job).then(
        (started) => {
          server = started
          send({ type: 'listening', port: started.port })
        },
        (err) => {
          send({ type: 'failed', message: `cannot start ${message.job.target} server: ${errorMessage(err)}` })
          process.exit(1)
        },
      )
      return
    case 'rss':
      send({ type: 'rss', rss: rss() })
      return
    case 'stop': {
      const stopping = server ? server.close(STOP_TIMEOUT_MS) : Promise.resolve()
      stopping.then(
        () => {
          if (!process.send) process.exit(0)
          process.send({ type: 'stopped' } satisfies FromServer, undefined, {}, () => {
            process.disconnect?.()
            setTimeout(() => process.exit(0), 20)
          })
        },
        (err) => {
          warn(`stop failed: ${errorMessage(err)}`)
          process.exit(1)
        },
      )
      return
    }
  }
})

// The parent went away: nobody will ever tell us to stop.
process.on('disconnect', () => setTimeout(() => process.exit(0), 100).unref())
process.on('uncaughtException', (err) => {
  send({ type: 'failed', message: `server crashed: ${err.stack ?? err.message}` })
  process.exit(1)
})
process.on('unhandledRejection', (err) => {
  send({ type: 'failed', message: `server unhandled rejection: ${errorMessage(err)}` })
  process.exit(1)
})
