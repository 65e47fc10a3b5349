import type { DescMessage, MessageInitShape, MessageShape } from '@bufbuild/protobuf'
import type { StandardJSONSchemaV1, StandardSchemaV1 } from '@standard-schema/spec'

/**
 * What describes a method's input or output: any Standard Schema (zod, valibot, arktype, …), or a
 * protobuf message type from `@bufbuild/protobuf` (for the `protobuf` codec).
 */
export type Schema = StandardSchemaV1 | DescMessage

/** What a caller passes (client input) or a handler returns (server output) for `S`. */
export type InputOf<S> = S extends StandardSchemaV1
  ? StandardSchemaV1.InferInput<S>
  : S extends DescMessage
    ? MessageInitShape<S>
    : never

/** What a handler receives (server input) or a caller gets back (client output) for `S`. */
export type OutputOf<S> = S extends StandardSchemaV1
  ? StandardSchemaV1.InferOutput<S>
  : S extends DescMessage
    ? MessageShape<S>
    : never

/** One validation problem, as it travels in `err.details.issues`. */
export interface Issue {
  /** Where in the value: property names and array indexes, outermost first; empty for the value itself. */
  readonly path: (string | number)[]
  readonly message: string
}

export function isStandardSchema(schema: unknown): schema is StandardSchemaV1 {
  const props = (schema as { '~standard'?: { validate?: unknown } } | null)?.['~standard']
  return typeof props?.validate === 'function'
}

export function isMessageSchema(schema: unknown): schema is DescMessage {
  return (schema as { kind?: unknown } | null)?.kind === 'message'
}

/** The result of checking one value: the parsed value, or the issues. */
export type Checked = { readonly value: unknown; readonly issues?: undefined } | { readonly issues: Issue[] }

/**
 * Runs `schema` on `value`. Synchronous when the schema is (zod, valibot and arktype usually are),
 * so the common call pays for no extra promise. A protobuf message type checks nothing here: its
 * codec already decoded a message of that type.
 */
export function check(schema: Schema, value: unknown): Checked | Promise<Checked> {
  if (!isStandardSchema(schema)) return { value }
  const result = schema['~standard'].validate(value)
  if (result instanceof Promise) return result.then(toChecked)
  return toChecked(result)
}

function toChecked(result: StandardSchemaV1.Result<unknown>): Checked {
  if (result.issues === undefined) return { value: result.value }
  return { issues: result.issues.map(toIssue) }
}

function toIssue(issue: StandardSchemaV1.Issue): Issue {
  const path = (issue.path ?? []).map((segment) => {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment
    return typeof key === 'number' ? key : String(key)
  })
  return { path, message: String(issue.message) }
}

/** "limit: Too big…" for the error message; the full list goes in the details. */
export function describeIssues(issues: readonly Issue[]): string {
  const first = issues[0]
  if (first === undefined) return 'invalid'
  const where = first.path.length > 0 ? `${first.path.join('.')}: ` : ''
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''
  return `${where}${first.message}${more}`
}

/**
 * The JSON Schema of `schema`'s input or output side, for reflection: through Standard JSON
 * Schema when the library implements it (zod 4, arktype), undefined otherwise (valibot without
 * its converter, protobuf message types) or when the schema has no JSON Schema form.
 */
export function jsonSchemaOf(
  schema: Schema | undefined,
  side: 'input' | 'output',
): Record<string, unknown> | undefined {
  const converter = (schema as Partial<StandardJSONSchemaV1> | undefined)?.['~standard']?.jsonSchema
  if (converter === undefined || typeof converter[side] !== 'function') return undefined
  try {
    return converter[side]({ target: 'draft-2020-12' })
  } catch {
    // A schema with parts JSON Schema cannot express (a transform, a Date): no schema rather than a failure.
    return undefined
  }
}
