import { describe, expect, it } from 'vitest'
import { Latencies } from './latency'
import { drawHistogram } from './report'

describe('Latencies', () => {
  it('bins every recorded call between the fastest and the slowest', () => {
    const latencies = new Latencies()
    for (let i = 1; i <= 1000; i++) latencies.recordMs(i / 100) // 0.01 .. 10 ms
    const bins = latencies.bins(10)
    expect(bins).toHaveLength(10)
    expect(bins.reduce((sum, bin) => sum + bin.count, 0)).toBe(1000)
    expect(bins[0].fromMs).toBeCloseTo(0.01, 2)
    expect(bins[9].toMs).toBeCloseTo(10, 1)
    // Uniform input: every bin holds about a tenth.
    for (const bin of bins) expect(bin.count).toBeGreaterThan(80)
    const s = latencies.summary()
    expect(s.p50).toBeCloseTo(5, 1)
    expect(s.p99).toBeCloseTo(9.9, 1)
    expect(s.p999).toBeLessThanOrEqual(s.max)
  })

  it('has no bins and zero percentiles when nothing was recorded', () => {
    const latencies = new Latencies()
    expect(latencies.bins(10)).toEqual([])
    expect(latencies.summary().max).toBe(0)
  })

  it('draws bars scaled to the fullest bin', () => {
    const lines = drawHistogram([
      { fromMs: 0, toMs: 1, count: 10 },
      { fromMs: 1, toMs: 2, count: 5 },
      { fromMs: 2, toMs: 3, count: 0 },
    ])
    expect(lines).toEqual([
      `  1.000 ms [10] |${'■'.repeat(40)}`,
      `  2.000 ms [5]  |${'■'.repeat(20)}`,
      '  3.000 ms [0]  |',
    ])
  })
})
