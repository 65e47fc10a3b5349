import { describe, expect, it } from 'vitest'
import { Backoff, backoffCeiling } from './backoff'

const schedule = { initial: 1000, multiplier: 1.6, max: 120_000 }

describe('Backoff', () => {
  it('draws each delay from [initial, min(max, initial · multiplier^n)]', () => {
    const low = new Backoff(schedule, () => 0)
    const high = new Backoff(schedule, () => 1)
    const ceilings = [
      1600, 2560, 4096, 6554, 10_486, 16_777, 26_844, 42_950, 68_719, 109_951, 120_000, 120_000,
    ]
    for (const ceiling of ceilings) {
      expect(low.next()).toBe(1000)
      expect(high.next()).toBe(ceiling)
    }
    expect(high.failures).toBe(ceilings.length)
  })

  it('spreads delays over the whole window (full jitter), not around one value', () => {
    const backoff = new Backoff({ initial: 100, multiplier: 2, max: 10_000 })
    const thirdStep: number[] = []
    for (let i = 0; i < 2000; i++) {
      backoff.reset()
      backoff.next()
      backoff.next()
      thirdStep.push(backoff.next())
    }
    // Third failure: uniform over [100, 800].
    expect(Math.min(...thirdStep)).toBeGreaterThanOrEqual(100)
    expect(Math.max(...thirdStep)).toBeLessThanOrEqual(800)
    expect(Math.min(...thirdStep)).toBeLessThan(150)
    expect(Math.max(...thirdStep)).toBeGreaterThan(750)
    const mean = thirdStep.reduce((a, b) => a + b, 0) / thirdStep.length
    expect(mean).toBeGreaterThan(420)
    expect(mean).toBeLessThan(480)
  })

  it('starts again from the first step after reset', () => {
    const backoff = new Backoff(schedule, () => 1)
    for (let i = 0; i < 8; i++) backoff.next()
    expect(backoff.failures).toBe(8)
    backoff.reset()
    expect(backoff.failures).toBe(0)
    expect(backoff.next()).toBe(1600)
  })

  it('waits exactly `initial` every time with a multiplier of 1', () => {
    const backoff = new Backoff({ initial: 250, multiplier: 1, max: 250 }, Math.random)
    expect(Array.from({ length: 5 }, () => backoff.next())).toEqual([250, 250, 250, 250, 250])
  })

  it('caps the ceiling at max', () => {
    expect(backoffCeiling(schedule, 1)).toBe(1600)
    expect(backoffCeiling(schedule, 50)).toBe(120_000)
    expect(backoffCeiling({ initial: 100, multiplier: 1.6, max: 1000 }, 5)).toBe(1000)
  })
})
