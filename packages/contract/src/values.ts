import { Code, RpcError } from '@srpc/protocol'
import type { Codec } from './codec'
import { type Checked, check, describeIssues, type Issue, type Schema } from './schema'

/**
 * The four crossings a value makes, each with the error its side owes: what a client sent and
 * the server cannot read is INVALID_ARGUMENT (with the issues in `details`); what a server is
 * about to send and cannot is its own bug (a plain Error, which the server reports and answers
 * INTERNAL); what a client cannot send is INVALID_ARGUMENT before anything leaves; what a client
 * cannot read from the server is INTERNAL.
 */

/** Server: the bytes a client sent, decoded and validated. Sync when the schema is. */
export function readInput(codec: Codec, schema: Schema, payload: Uint8Array): unknown {
  let decoded: unknown
  try {
    decoded = codec.decode(payload, schema)
  } catch (err) {
    throw new RpcError(Code.INVALID_ARGUMENT, `input is not valid ${codec.name}: ${messageOf(err)}`, {
      cause: err,
    })
  }
  return settle(checkSafely(schema, decoded, 'input'), inputChecked)
}

function inputChecked(checked: Checked): unknown {
  if (checked.issues === undefined) return checked.value
  throw invalid('input', checked.issues, Code.INVALID_ARGUMENT)
}

/** Server: a handler's value, validated and encoded; a plain Error (a handler bug) when it cannot be. */
export function writeOutput(
  codec: Codec,
  schema: Schema,
  value: unknown,
  route: string,
): Uint8Array | Promise<Uint8Array> {
  return settle(checkSafely(schema, value, 'output'), (checked) => {
    if (checked.issues !== undefined)
      throw new Error(`${route} returned an invalid output: ${describeIssues(checked.issues)}`, {
        cause: invalid('output', checked.issues, Code.INTERNAL),
      })
    try {
      return codec.encode(checked.value, schema)
    } catch (err) {
      throw new Error(`${route} returned an output ${codec.name} cannot encode: ${messageOf(err)}`, {
        cause: err,
      })
    }
  })
}

/** Client: the caller's value encoded (not validated: the server does that). INVALID_ARGUMENT when it cannot be. */
export function writeInput(codec: Codec, schema: Schema, value: unknown): Uint8Array {
  try {
    return codec.encode(value, schema)
  } catch (err) {
    throw new RpcError(Code.INVALID_ARGUMENT, `input cannot be encoded as ${codec.name}: ${messageOf(err)}`, {
      cause: err,
    })
  }
}

/** Client: the server's bytes decoded, and validated when `validate`. INTERNAL when they are not what the contract says. */
export function readOutput(codec: Codec, schema: Schema, payload: Uint8Array, validate: boolean): unknown {
  let decoded: unknown
  try {
    decoded = codec.decode(payload, schema)
  } catch (err) {
    throw new RpcError(
      Code.INTERNAL,
      `the server sent an output that is not valid ${codec.name}: ${messageOf(err)}`,
      {
        cause: err,
      },
    )
  }
  if (!validate) return decoded
  return settle(checkSafely(schema, decoded, 'output'), (checked) => {
    if (checked.issues === undefined) return checked.value
    throw invalid('output', checked.issues, Code.INTERNAL)
  })
}

/** Runs `then` on a value or a promise of one, staying synchronous when it can. */
export function settle<T, R>(value: T | PromiseLike<T>, then: (value: T) => R): R | Promise<Awaited<R>> {
  return isThenable(value) ? (Promise.resolve(value).then(then) as Promise<Awaited<R>>) : then(value as T)
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

/** A schema that throws (a stack overflow on a deeply nested value, a bug in a refinement) is an invalid value, not a crash. */
function checkSafely(schema: Schema, value: unknown, side: string): Checked | Promise<Checked> {
  try {
    const checked = check(schema, value)
    return checked instanceof Promise ? checked.catch((err) => thrown(err, side)) : checked
  } catch (err) {
    return thrown(err, side)
  }
}

function thrown(err: unknown, side: string): Checked {
  return { issues: [{ path: [], message: `${side} could not be validated: ${messageOf(err)}` }] }
}

function invalid(side: 'input' | 'output', issues: Issue[], code: Code): RpcError {
  return new RpcError(code, `invalid ${side}: ${describeIssues(issues)}`, { details: { issues } })
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
