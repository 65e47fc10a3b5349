import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { RpcError } from '@srpc/protocol'
import { Latencies } from './latency'

/** How a bench run is bounded: by a count of calls, a duration, or both (whichever comes first). */
export interface BenchPlan {
  total: number | undefined
  durationMs: number | undefined
  concurrency: number
}

export type StopReason = 'count' | 'duration' | 'interrupt'

export interface BenchResult {
  /** Calls finished (ok + every error). */
  count: number
  ok: number
  /** Failed calls by code (`UNKNOWN` for an error that is not an RpcError). */
  errors: Record<string, number>
  elapsedMs: number
  /** Latencies of the calls that succeeded. */
  latencies: Latencies
  stoppedBy: StopReason
}

/** What a progress display reads while the run goes. */
export interface BenchProgress {
  readonly started: number
  readonly count: number
  readonly errorCount: number
  readonly elapsedMs: number
}

/**
 * Runs `call` from `concurrency` loops until `total` calls were started or `durationMs` passed
 * (calls in flight then finish, each bounded by its own timeout), or `signal` aborts.
 */
export async function runBench(
  call: () => Promise<unknown>,
  plan: BenchPlan,
  signal: AbortSignal,
  progress?: (state: BenchProgress) => void,
): Promise<BenchResult> {
  const latencies = new Latencies()
  const errors: Record<string, number> = {}
  let issued = 0
  let ok = 0
  let failed = 0
  let stoppedBy: StopReason = 'count'
  let stopping = false
  const stop = (reason: StopReason) => {
    if (stopping) return
    stopping = true
    stoppedBy = reason
  }
  const onAbort = () => stop('interrupt')
  signal.addEventListener('abort', onAbort)
  const timer =
    plan.durationMs === undefined ? undefined : setTimeout(() => stop('duration'), plan.durationMs)
  const began = performance.now()
  const state: BenchProgress = {
    get started() {
      return issued
    },
    get count() {
      return ok + failed
    },
    get errorCount() {
      return failed
    },
    get elapsedMs() {
      return performance.now() - began
    },
  }
  const ticker = progress === undefined ? undefined : setInterval(() => progress(state), 100)

  const worker = async () => {
    while (!stopping && (plan.total === undefined || issued < plan.total)) {
      issued++
      const started = performance.now()
      try {
        await call()
        latencies.recordMs(performance.now() - started)
        ok++
      } catch (err) {
        const code = RpcError.is(err) ? err.code : 'UNKNOWN'
        errors[code] = (errors[code] ?? 0) + 1
        failed++
        // A call can fail without any I/O (no connection): let timers (the duration, Ctrl-C) run.
        await yieldToLoop()
      }
    }
  }
  try {
    const workers = Math.min(plan.concurrency, plan.total ?? plan.concurrency)
    await Promise.all(Array.from({ length: workers }, worker))
  } finally {
    clearTimeout(timer)
    clearInterval(ticker)
    signal.removeEventListener('abort', onAbort)
  }
  const elapsedMs = performance.now() - began
  progress?.(state)
  return { count: ok + failed, ok, errors, elapsedMs, latencies, stoppedBy }
}
