import { describe, expect, it } from 'vitest'
import { formatDuration, parseCount, parseDuration } from './duration'
import { UsageError } from './errors'

describe('parseDuration', () => {
  it('reads ms, s, m and h, and a bare number as milliseconds', () => {
    expect(parseDuration('--timeout', '250ms', 10_000)).toBe(250)
    expect(parseDuration('--timeout', '1.5s', 10_000)).toBe(1500)
    expect(parseDuration('-z', '2m', 3_600_000)).toBe(120_000)
    expect(parseDuration('-z', '1h', 3_600_000)).toBe(3_600_000)
    expect(parseDuration('--timeout', '40', 10_000)).toBe(40)
  })

  it('refuses zero, junk and values past the bound with a usage error naming the option', () => {
    expect(() => parseDuration('--timeout', '0s', 10_000)).toThrow(UsageError)
    expect(() => parseDuration('--timeout', '5 sec', 10_000)).toThrow(/--timeout must be a duration/)
    expect(() => parseDuration('-z', '2h', 3_600_000)).toThrow('-z must be at most 1 h, got "2h"')
  })
})

describe('parseCount', () => {
  it('accepts whole numbers in range only', () => {
    expect(parseCount('-c', '8', 1, 10)).toBe(8)
    for (const bad of ['0', '11', '2.5', '-1', '1e3', 'x', ''])
      expect(() => parseCount('-c', bad, 1, 10), bad).toThrow('-c must be a whole number from 1 to 10')
  })
})

describe('formatDuration', () => {
  it('picks a readable unit', () => {
    expect(formatDuration(850)).toBe('850 ms')
    expect(formatDuration(12_500)).toBe('12.5 s')
    expect(formatDuration(180_000)).toBe('3 min')
  })
})
