import { afterEach, beforeEach, vi } from 'vitest'
import type { BalancerHooks } from '../src/load-balancer'

/** What a LoadBalancer asks of its pool, answered by doing nothing: for tests of the balancer alone. */
export function idleHooks(): BalancerHooks {
  return {
    queued: 0,
    dispatch: () => {},
    failWaiting: () => {},
    rotated: () => {},
    roundFailed: () => {},
    changed: () => {},
  }
}

/**
 * Fake timers and clock for every test of the file, and Math.random at the top of every jitter
 * window (so delays are the backoff schedule's ceilings, and shuffles keep their order).
 */
export function useFakeClock(): void {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] })
    vi.spyOn(Math, 'random').mockReturnValue(0.999999)
  })
  afterEach(() => {
    vi.useRealTimers()
    vi.restoreAllMocks()
  })
}
