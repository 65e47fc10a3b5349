import { UsageError } from './errors'

/** Bound on any timeout given on the command line: a day. */
export const MAX_TIMEOUT = 24 * 3_600_000

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * A duration from the command line, in ms: `250ms`, `5s`, `1.5m`, `1h`, or a bare number of
 * milliseconds (srpc measures every time in ms). Bounded by `max` ms.
 */
export function parseDuration(option: string, raw: string, max: number): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim())
  if (match === null) {
    throw new UsageError(`${option} must be a duration such as 500ms, 5s or 2m, got ${JSON.stringify(raw)}`)
  }
  const ms = Math.round(Number(match[1]) * UNITS[match[2] ?? 'ms'])
  if (ms <= 0) throw new UsageError(`${option} must be more than 0, got ${JSON.stringify(raw)}`)
  if (ms > max)
    throw new UsageError(`${option} must be at most ${formatDuration(max)}, got ${JSON.stringify(raw)}`)
  return ms
}

/** A whole number from the command line, in [min, max]. */
export function parseCount(option: string, raw: string, min: number, max: number): number {
  const value = Number(raw)
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${option} must be a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  }
  return value
}

/** `850 ms`, `12.5 s`, `3 min`: for messages and summaries. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(2))} s`
  if (ms < 3_600_000) return `${Number((ms / 60_000).toFixed(1))} min`
  return `${Number((ms / 3_600_000).toFixed(1))} h`
}
