/**
 * The client process of one benchmark cell: a fresh process per repetition, so no JIT state,
 * heap or connection carries over from the previous cell. Reports one result over IPC.
 */
import type { ClientJob, FromClient, TargetName, ToClient } from './messages'
import type { OpenClient } from './targets/client-target'
import { errorMessage } from './util'
import { runWorkload } from './workloads'

/** Loads only the target it runs: a broken srpc build must not take the reference cells down with it. */
async function loadClient(target: TargetName): Promise<OpenClient> {
  switch (target) {
    case 'raw':
      await preloadForRaw(process.env.SRPC_BENCH_RAW_PRELOAD)
      return (await import('./targets/raw-client')).openRawClient
    case 'srpc':
      return (await import('./targets/srpc-client')).openSrpcClient
    case 'grpc':
      return (await import('./targets/grpc-client')).openGrpcClient
  }
}

/**
 * Diagnostic (see "Scenario d" in the README): SRPC_BENCH_RAW_PRELOAD=MODULE makes the raw TLS
 * client import MODULE first (`srpc` for srpc's client target), to measure what a larger process
 * alone does to the reference. Never set in a results run.
 */
async function preloadForRaw(specifier: string | undefined): Promise<void> {
  if (!specifier) return
  // The module loader keeps what it imported (and so it stays in the heap) for the process's life.
  await (specifier === 'srpc' ? import('./targets/srpc-client') : import(specifier))
}

function send(message: FromClient): void {
  process.send?.(message)
}

let rssWaiter: ((rss: number) => void) | undefined

function serverRss(): Promise<number> {
  if (rssWaiter) return Promise.reject(new Error('an RSS request is already waiting'))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      rssWaiter = undefined
      reject(new Error('no RSS answer from the server within 10 s'))
    }, 10_000)
    rssWaiter = (rss) => {
      clearTimeout(timer)
      rssWaiter = undefined
      resolve(rss)
    }
    send({ type: 'rss-request' })
  })
}

async function run(job: ClientJob): Promise<void> {
  try {
    const outcome = await runWorkload(job.workload, {
      open: await loadClient(job.target),
      port: job.port,
      ca: job.ca,
      timing: job.timing,
      serverRss,
      target: job.target,
    })
    sendAndExit({ type: 'result', metrics: outcome.metrics, failure: outcome.failure })
  } catch (err) {
    sendAndExit({ type: 'failed', message: errorMessage(err) })
  }
}

/** Exits once the message is handed to the channel; a stray timer must not keep the process alive. */
function sendAndExit(message: FromClient): void {
  const exit = () => process.exit(0)
  if (!process.send) return exit()
  process.send(message, undefined, {}, () => {
    process.disconnect?.()
    setTimeout(exit, 20)
  })
  setTimeout(exit, 5000).unref()
}

process.on('message', (message: ToClient) => {
  if (message.type === 'run') run(message.job)
  else if (message.type === 'rss') rssWaiter?.(message.rss)
})
process.on('disconnect', () => setTimeout(() => process.exit(0), 1000).unref())
process.on('uncaughtException', (err) => {
  send({ type: 'failed', message: `client crashed: ${err.stack ?? err.message}` })
  process.exit(1)
})
process.on('unhandledRejection', (err) => {
  send({ type: 'failed', message: `client unhandled rejection: ${errorMessage(err)}` })
  process.exit(1)
})
