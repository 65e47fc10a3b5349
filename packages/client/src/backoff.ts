import { closedError } from './call-queue'
import type { BackoffSchedule } from './options'
import { abortedError } from './unary-call'

/**
 * Exponential backoff with full jitter above a floor: after the n-th consecutive failure the
 * delay is drawn uniformly from [initial, min(max, initial · multiplier^n)]. The jitter spreads
 * clients that failed together (a server restart) over the whole window instead of letting them
 * return in a wave; the floor means one attempt per `initial` ms at most, never a busy loop.
 */
export class Backoff {
  readonly schedule: BackoffSchedule
  #random: () => number
  #failures = 0

  constructor(schedule: BackoffSchedule, random: () => number = Math.random) {
    this.schedule = schedule
    this.#random = random
  }

  /** Consecutive failures so far (delays handed out since the last reset). */
  get failures(): number {
    return this.#failures
  }

  /** The delay before the next attempt, ms; counts one more failure. */
  next(): number {
    const { initial } = this.schedule
    const ceiling = backoffCeiling(this.schedule, ++this.#failures)
    return Math.round(initial + this.#random() * (ceiling - initial))
  }

  /** A connection succeeded: the next failure starts from the first step again. */
  reset(): void {
    this.#failures = 0
  }
}

/** The largest delay after the n-th consecutive failure (n ≥ 1), ms. */
export function backoffCeiling(schedule: BackoffSchedule, failures: number): number {
  return Math.min(schedule.max, schedule.initial * schedule.multiplier ** failures)
}

/** Waits `ms` between retries; ends early with the call's signal, or when the pool closes. */
export function sleep(ms: number, signal: AbortSignal | undefined, closing: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal))
    if (closing.aborted) return reject(closedError())
    const settle = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      closing.removeEventListener('abort', onClose)
    }
    const onAbort = () => {
      settle()
      reject(abortedError(signal!))
    }
    const onClose = () => {
      settle()
      reject(closedError())
    }
    const timer = setTimeout(() => {
      settle()
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
    closing.addEventListener('abort', onClose, { once: true })
  })
}
