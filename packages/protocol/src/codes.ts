/**
 * The closed set of status codes. The names are the wire values (they travel in the ERROR
 * frame's JSON value), so they are never renamed. Meanings follow gRPC's codes of the same
 * name; PROTOCOL_ERROR is srpc's own, for a peer that broke the frame protocol.
 */
export const Code = {
  CANCELLED: 'CANCELLED',
  UNKNOWN: 'UNKNOWN',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  DEADLINE_EXCEEDED: 'DEADLINE_EXCEEDED',
  NOT_FOUND: 'NOT_FOUND',
  ALREADY_EXISTS: 'ALREADY_EXISTS',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  RESOURCE_EXHAUSTED: 'RESOURCE_EXHAUSTED',
  FAILED_PRECONDITION: 'FAILED_PRECONDITION',
  ABORTED: 'ABORTED',
  OUT_OF_RANGE: 'OUT_OF_RANGE',
  UNIMPLEMENTED: 'UNIMPLEMENTED',
  INTERNAL: 'INTERNAL',
  UNAVAILABLE: 'UNAVAILABLE',
  DATA_LOSS: 'DATA_LOSS',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  PROTOCOL_ERROR: 'PROTOCOL_ERROR',
} as const

export type Code = (typeof Code)[keyof typeof Code]

const CODES: ReadonlySet<string> = new Set(Object.values(Code))

export function isCode(value: unknown): value is Code {
  return typeof value === 'string' && CODES.has(value)
}
