import { Code, isCode } from './codes'
import { Flags } from './flags'
import { encodeFrame, type Frame, type FrameId, readId, writeId } from './frame'
import { RpcError } from './rpc-error'

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
  | { kind: typeof ControlKind.PING; payload: Buffer }
  | { kind: typeof ControlKind.PONG; payload: Buffer }
  | { kind: typeof ControlKind.CANCEL; code: Code }
  | { kind: typeof ControlKind.GOAWAY; lastId: FrameId; code: Code; message: string }
  | { kind: typeof ControlKind.WINDOW_UPDATE; bytes: number }
  | { kind: typeof ControlKind.HELLO_ACK }

export const EXTENSION_VERSION = 1

export function encodeControl(id: FrameId, message: ControlMessage): Buffer {
  return encodeFrame(Flags.CONTROL, id, '', encodeControlValue(message))
}

function encodeControlValue(message: ControlMessage): Buffer {
  switch (message.kind) {
    case ControlKind.HELLO: {
      const json = Buffer.from(JSON.stringify(message.capabilities), 'utf8')
      return Buffer.concat([Buffer.of(message.kind), json])
    }
    case ControlKind.PING:
    case ControlKind.PONG: {
      if (message.payload.length !== 8)
        throw new RpcError(Code.INVALID_ARGUMENT, 'ping payload must be 8 bytes')
      return Buffer.concat([Buffer.of(message.kind), message.payload])
    }
    case ControlKind.CANCEL:
      return Buffer.concat([Buffer.of(message.kind), Buffer.from(message.code, 'utf8')])
    case ControlKind.GOAWAY: {
      const out = Buffer.allocUnsafe(9)
      out[0] = message.kind
      writeId(out, message.lastId, 1)
      const text = Buffer.from(JSON.stringify({ code: message.code, message: message.message }), 'utf8')
      return Buffer.concat([out, text])
    }
    case ControlKind.HELLO_ACK:
      return Buffer.of(message.kind)
    case ControlKind.WINDOW_UPDATE: {
      const out = Buffer.allocUnsafe(5)
      out[0] = message.kind
      out.writeUInt32BE(message.bytes, 1)
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
      const text = body.toString('utf8')
      return { kind, code: isCode(text) ? text : Code.CANCELLED }
    }
    case ControlKind.GOAWAY: {
      if (body.length < 8) throw protocolError('goaway frame too short')
      const lastId = readId(body, 0)
      let code: Code = Code.UNAVAILABLE
      let message = ''
      try {
        const parsed = JSON.parse(body.subarray(8).toString('utf8') || '{}') as {
          code?: unknown
          message?: unknown
        }
        if (isCode(parsed.code)) code = parsed.code
        if (typeof parsed.message === 'string') message = parsed.message
      } catch {
        throw protocolError('goaway reason is not JSON')
      }
      return { kind, lastId, code, message }
    }
    case ControlKind.HELLO_ACK:
      return { kind }
    case ControlKind.WINDOW_UPDATE:
      if (body.length !== 4) throw protocolError('window update must carry 4 bytes')
      return { kind, bytes: body.readUInt32BE(0) }
    default:
      return undefined
  }
}

function parseCapabilities(body: Buffer): Capabilities {
  let parsed: unknown
  try {
    parsed = JSON.parse(body.toString('utf8'))
  } catch {
    throw protocolError('hello capabilities are not JSON')
  }
  if (parsed === null || typeof parsed !== 'object')
    throw protocolError('hello capabilities must be an object')
  const raw = parsed as Record<string, unknown>
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

function protocolError(message: string): RpcError {
  return new RpcError(Code.PROTOCOL_ERROR, message)
}
