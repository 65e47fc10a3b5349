import { Code } from './codes'
import { RpcError } from './rpc-error'

/** Throws the INVALID_ARGUMENT error every srpc option check uses, naming the option. */
export function invalidOption(name: string, problem: string): never {
  throw new RpcError(Code.INVALID_ARGUMENT, `option ${name} ${problem}`)
}

/**
 * A duration for an error message, in whole milliseconds. Timeouts left after a wait are
 * fractional, and "248.3598919999995 ms" says nothing more; rounded up, as deadlines travel.
 */
export function formatMs(ms: number): string {
  return `${Math.ceil(ms)} ms`
}

/** A positive safe integer option, or `fallback` when unset. */
export function positiveIntOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value <= 0)
    invalidOption(name, `must be a positive integer, got ${value}`)
  return value
}

/** A non-negative safe integer option, or `fallback` when unset. */
export function nonNegativeIntOption(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 0)
    invalidOption(name, `must be a non-negative integer, got ${value}`)
  return value
}

/** Largest flow-control window: credit grants travel in a u32, and 2 GiB is more than any need. */
export const MAX_INITIAL_WINDOW = 2 ** 31 - 1

/** A flow-control window option, bytes. */
export function windowOption(name: string, value: number | undefined, fallback: number): number {
  const window = positiveIntOption(name, value, fallback)
  if (window > MAX_INITIAL_WINDOW)
    invalidOption(name, `must be at most ${MAX_INITIAL_WINDOW} bytes, got ${window}`)
  return window
}
