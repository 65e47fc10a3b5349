import { invalidOption } from '@srpc/protocol'

/** One level of a pino-compatible logger: the structured fields first, then the message. */
export type LogFn = (fields: Record<string, unknown>, message: string) => void

/**
 * What srpc logs through: pino, or anything with the same four methods called object first
 * (`logger.warn({ peer, code }, 'connection failed')`). Silent unless one is given.
 */
export interface Logger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
}

function silent(): void {}

/** The logger used when none is given: every level does nothing. */
export const SILENT_LOGGER: Logger = Object.freeze({
  debug: silent,
  info: silent,
  warn: silent,
  error: silent,
})

/**
 * Validates the `logger` option once. The methods are bound to the logger (pino's need `this`)
 * and wrapped so that a logger that throws can never break a connection or a call.
 */
export function loggerOption(value: unknown): Logger {
  if (value === undefined) return SILENT_LOGGER
  if (value === null || typeof value !== 'object')
    invalidOption('logger', 'must be an object with debug, info, warn and error')
  const logger = value as Record<string, unknown>
  const out = {} as Record<keyof Logger, LogFn>
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    const fn = logger[level]
    if (typeof fn !== 'function') invalidOption(`logger.${level}`, 'must be a function (fields, message)')
    out[level] = (fields, message) => {
      try {
        fn.call(logger, fields, message)
      } catch {
        // A broken logger loses its line; it must not take the connection or the call with it.
      }
    }
  }
  return Object.freeze(out)
}

/** The fields that describe an error in a log line: its code when it has one, and its message. */
export function errorFields(error: unknown): Record<string, unknown> {
  if (error === undefined) return {}
  const code = (error as { code?: unknown })?.code
  return {
    code: typeof code === 'string' ? code : undefined,
    // pino's standard serializer prints an Error under `err` with its type, message and stack.
    err: error,
  }
}
