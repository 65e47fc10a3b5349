import { decodeUtf8, encodeUtf8, readU32, writeU32 } from './bytes'
import { Code, isCode } from './codes'
import { Flags } from './flags'
import { encodeFrame, type Frame, type FrameId, readId, writeId } from './frame'
import { protocolError, RpcError } from './rpc-error'

/**
 * Control frames (srpc extension). A control frame has flags === CONTROL, an empty type, and a
 * value whose first byte is the kind. `id` is the call it concerns, or 0 for the connection.
 * They are only sent to a peer that negotiated them (HELLO is the one exception: the client's
 * announcement, which a v1 server ignores). Byte layouts are in docs/protocol.md.
 */
export const ControlKind = {
  HELLO: 0x01,
  PING: 0x02,
  PONG: 0x03,
  CANCEL: 0x04,
  GOAWAY: 0x05,
  WINDOW_UPDATE: 0x06,
  HELLO_ACK: 0x07,
} as const
export type ControlKind = (typeof ControlKind)[keyof typeof ControlKind]

/** What a peer announces in HELLO. Unknown fields are ignored by the receiver. */
export interface Capabilities {
  /** Highest extension protocol revision understood. */
  version: number
  /** Extensions the sender supports (e.g. 'cancel', 'ping', 'goaway', 'flow', 'metadata', 'compression'). */
  features: string[]
  /** Compression codecs in order of preference. */
  codecs?: string[]
  /** Receive window per stream in bytes, when 'flow' is on. */
  initialWindow?: number
  /** Most concurrent calls the sender accepts on this connection. */
  maxConcurrentStreams?: number
  /** Largest frame the sender accepts. */
  maxFrameSize?: number
}

export type ControlMessage =
  | { kind: typeof ControlKind.HELLO; capabilities: Capabilities }
  | { kind: typeof ControlKind.PING; payload: Uint8Array }
  | { kind: typeof ControlKind.PONG; payload: Uint8Array }
  | { kind: typeof ControlKind.CANCEL; code: Code }
  | { kind: typeof ControlKind.GOAWAY; lastId: FrameId; code: Code; message: string }
  | { kind: typeof ControlKind.WINDOW_UPDATE; bytes: number }
  | { kind: typeof ControlKind.HELLO_ACK }

export const EXTENSION_VERSION = 1
/** Largest credit one WINDOW_UPDATE can carry: its body is a u32. */
const MAX_WINDOW_UPDATE = 0xffff_ffff

/** Encodes a control frame. Most are under 64 bytes, which V8 allocates as cheaply as an object. */
export function encodeControl(id: FrameId, message: ControlMessage): Uint8Array {
  return encodeFrame(Flags.CONTROL, id, '', encodeControlValue(message))
}

/** The kind byte followed by `body`. */
function withKind(kind: ControlKind, body: Uint8Array, bodyAt = 1): Uint8Array {
  const out = new Uint8Array(bodyAt + body.length)
  out[0] = kind
  out.set(body, bodyAt)
  return out
}

function encodeControlValue(message: ControlMessage): Uint8Array {
  switch (message.kind) {
    case ControlKind.HELLO:
      return withKind(message.kind, encodeUtf8(JSON.stringify(message.capabilities)))
    case ControlKind.PING:
    case ControlKind.PONG: {
      if (message.payload.length !== 8)
        throw new RpcError(Code.INVALID_ARGUMENT, 'ping payload must be 8 bytes')
      return withKind(message.kind, message.payload)
    }
    case ControlKind.CANCEL:
      return withKind(message.kind, encodeUtf8(message.code))
    case ControlKind.GOAWAY: {
      const text = encodeUtf8(JSON.stringify({ code: message.code, message: message.message }))
      // kind, then the last id (8 bytes), then the reason.
      const out = withKind(message.kind, text, 9)
      writeId(out, message.lastId, 1)
      return out
    }
    case ControlKind.HELLO_ACK:
      return Uint8Array.of(message.kind)
    case ControlKind.WINDOW_UPDATE: {
      const bytes = message.bytes
      if (!Number.isInteger(bytes) || bytes < 0 || bytes > MAX_WINDOW_UPDATE) {
        throw new RpcError(
          Code.INVALID_ARGUMENT,
          `window update must be an integer 0..${MAX_WINDOW_UPDATE} bytes, got ${bytes}`,
        )
      }
      const out = new Uint8Array(5)
      out[0] = message.kind
      writeU32(out, message.bytes, 1)
      return out
    }
  }
}

/**
 * Parses a control frame's value. A kind this build does not know returns `undefined` (the
 * caller ignores it, so newer peers can add kinds); a known kind with a malformed body throws
 * RpcError(PROTOCOL_ERROR).
 */
export function decodeControl(frame: Frame): ControlMessage | undefined {
  const value = frame.value
  if (value.length === 0) throw protocolError('empty control frame')
  const kind = value[0]
  const body = value.subarray(1)
  switch (kind) {
    case ControlKind.HELLO:
      return { kind, capabilities: parseCapabilities(body) }
    case ControlKind.PING:
    case ControlKind.PONG:
      if (body.length !== 8) throw protocolError('ping/pong payload must be 8 bytes')
      return { kind, payload: body }
    case ControlKind.CANCEL: {
      const text = decodeUtf8(body)
      return { kind, code: isCode(text) ? text : Code.CANCELLED }
    }
    case ControlKind.GOAWAY: {
      if (body.length < 8) throw protocolError('goaway frame too short')
      const lastId = readId(body, 0)
      // No reason at all is allowed: UNAVAILABLE with an empty message.
      const reason: Record<string, unknown> =
        body.length === 8 ? {} : parseJsonObject(body.subarray(8), 'goaway reason')
      return {
        kind,
        lastId,
        code: isCode(reason.code) ? reason.code : Code.UNAVAILABLE,
        message: typeof reason.message === 'string' ? reason.message : '',
      }
    }
    case ControlKind.HELLO_ACK:
      // Nothing to read, so nothing may be there: extra bytes mean the peer meant something else.
      if (body.length !== 0) throw protocolError('HELLO_ACK carries no body')
      return { kind }
    case ControlKind.WINDOW_UPDATE:
      if (body.length !== 4) throw protocolError('window update must carry 4 bytes')
      return { kind, bytes: readU32(body, 0) }
    default:
      return undefined
  }
}

/**
 * Parses a body that must be a JSON object (HELLO capabilities, GOAWAY reason). Valid JSON
 * that is not an object (null, a number, a string, an array) is a PROTOCOL_ERROR too, so a
 * peer's mistake is reported rather than half-read.
 */
function parseJsonObject(body: Uint8Array, what: string): Record<string, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(decodeUtf8(body))
  } catch {
    throw protocolError(`${what} is not JSON`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw protocolError(`${what} must be a JSON object`)
  }
  return parsed as Record<string, unknown>
}

function parseCapabilities(body: Uint8Array): Capabilities {
  const raw = parseJsonObject(body, 'hello capabilities')
  const caps: Capabilities = {
    version: typeof raw.version === 'number' ? raw.version : 1,
    features: Array.isArray(raw.features)
      ? raw.features.filter((f): f is string => typeof f === 'string')
      : [],
  }
  if (Array.isArray(raw.codecs)) caps.codecs = raw.codecs.filter((c): c is string => typeof c === 'string')
  if (isPositiveInt(raw.initialWindow)) caps.initialWindow = raw.initialWindow
  if (isPositiveInt(raw.maxConcurrentStreams)) caps.maxConcurrentStreams = raw.maxConcurrentStreams
  if (isPositiveInt(raw.maxFrameSize)) caps.maxFrameSize = raw.maxFrameSize
  return caps
}

function isPositiveInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0
}
