import { decodeUtf8, encodeUtf8 } from './bytes'
import { Code, isCode } from './codes'

/**
 * Marks every RpcError, whichever copy of this module made it: the ESM and CJS builds (or two
 * installed versions) each define their own class, and `instanceof` alone would tell them apart.
 */
const BRAND = Symbol.for('srpc.RpcError')

/**
 * The one error type of srpc. Callers branch on `code`, never on `message`.
 * `cause` keeps the original platform error (ECONNRESET, a TLS failure, …) where there was one.
 * `instanceof RpcError` and `RpcError.is` hold for an RpcError from any copy of this package.
 */
export class RpcError extends Error {
  override readonly name = 'RpcError'
  readonly code: Code
  /**
   * True when the server refused the call before any handler saw it (it was draining, or the
   * connection's stream limit was reached): sending it again cannot repeat work.
   */
  readonly refused: boolean
  /**
   * Structured, JSON-serialisable facts about the failure (validation issues, the id that was
   * not found, …). They travel to srpc peers that negotiated `details`; a v1 peer gets code and
   * message only. Undefined when the error has none.
   */
  readonly details: unknown

  constructor(
    code: Code,
    message: string,
    options?: { cause?: unknown; refused?: boolean; details?: unknown },
  ) {
    super(message, options)
    this.code = code
    this.refused = options?.refused ?? false
    this.details = options?.details
  }

  static {
    Object.defineProperty(RpcError.prototype, BRAND, { value: true })
  }

  /**
   * `err instanceof RpcError` checks the brand, so an error from another build of this package
   * counts. A subclass keeps the ordinary prototype check: only RpcError itself is that lenient.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class on the right of instanceof, a subclass included
    if (this !== RpcError) return Function.prototype[Symbol.hasInstance].call(this, value)
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true
  }

  static is(err: unknown, code?: Code): err is RpcError {
    return err instanceof RpcError && (code === undefined || err.code === code)
  }

  /** Wraps anything thrown by application code; only RpcErrors keep their message across the wire. */
  static from(err: unknown, fallback: Code = Code.INTERNAL): RpcError {
    if (err instanceof RpcError) return err
    const message = err instanceof Error ? err.message : String(err)
    return new RpcError(fallback, message, { cause: err })
  }
}

/**
 * The ERROR frame's value: UTF-8 JSON `{"code":"NOT_FOUND","message":"…"}`, plus
 * `"refused":true` when no handler saw the call, plus `"details":…` when `withDetails` (the
 * peer negotiated `details`) and the error has details that JSON can carry. Details JSON cannot
 * encode (a cycle, a BigInt) are left out rather than failing the error frame.
 */
export function encodeErrorValue(err: RpcError, withDetails = false): Uint8Array {
  const body: { code: Code; message: string; refused?: true; details?: unknown } = {
    code: err.code,
    message: err.message,
  }
  if (err.refused) body.refused = true
  if (withDetails && err.details !== undefined) {
    body.details = err.details
    try {
      return encodeUtf8(JSON.stringify(body))
    } catch {
      delete body.details
    }
  }
  return encodeUtf8(JSON.stringify(body))
}

/**
 * Reads an ERROR frame's value. A v1 peer may send plain text: that becomes the message of an
 * UNKNOWN error rather than a decoding failure.
 */
export function decodeErrorValue(value: Uint8Array): RpcError {
  const text = decodeUtf8(value)
  if (text.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(text)
      if (parsed !== null && typeof parsed === 'object') {
        const { code, message, refused, details } = parsed as {
          code?: unknown
          message?: unknown
          refused?: unknown
          details?: unknown
        }
        if (isCode(code)) {
          return new RpcError(code, typeof message === 'string' ? message : '', {
            refused: refused === true,
            details,
          })
        }
      }
    } catch {
      // not JSON: fall through to plain text
    }
  }
  return new RpcError(Code.UNKNOWN, text)
}

/** The error for a peer that broke the protocol: the connection it arrived on fails with it. */
export function protocolError(message: string): RpcError {
  return new RpcError(Code.PROTOCOL_ERROR, message)
}
