import { describe, expect, it } from 'vitest'
import { Code } from './codes'
import { type Capabilities, ControlKind, type ControlMessage, decodeControl, encodeControl } from './control'
import { Flags } from './flags'
import { type Frame, type FrameId, HEADER_SIZE } from './frame'
import { FrameDecoder } from './frame-decoder'
import { RpcError } from './rpc-error'

/** The encoders return plain Uint8Arrays; a Buffer over the same bytes reads them here. */
const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/** Encodes a control message and reads it back through the frame decoder, as a peer would. */
function roundTrip(
  id: FrameId,
  message: ControlMessage,
): { frame: Frame; decoded: ControlMessage | undefined } {
  const [frame] = new FrameDecoder().decode(encodeControl(id, message))
  return { frame, decoded: decodeControl(frame) }
}

/** A control frame with an arbitrary value, for bodies the encoder would never produce. */
const controlFrame = (value: Buffer, id: FrameId = 0): Frame => ({
  flags: Flags.CONTROL,
  id,
  type: '',
  value,
})

function expectProtocolError(fn: () => unknown): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(RpcError)
  expect((thrown as RpcError).code).toBe(Code.PROTOCOL_ERROR)
}

const PING_PAYLOAD = Buffer.from('0102030405060708', 'hex')

/** A GOAWAY value with last id 1 and `reason` as its text. */
const goaway = (reason: string): Buffer =>
  Buffer.concat([Buffer.of(0x05), Buffer.from('0000000000000001', 'hex'), Buffer.from(reason, 'utf8')])

function expectInvalidArgument(fn: () => unknown): RpcError {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(RpcError)
  expect((thrown as RpcError).code).toBe(Code.INVALID_ARGUMENT)
  return thrown as RpcError
}

describe('control frames on the wire', () => {
  it('are frames with flags exactly CONTROL, an empty type and the kind as the first value byte', () => {
    const bytes = asBuffer(encodeControl(0, { kind: ControlKind.PING, payload: PING_PAYLOAD }))
    expect(bytes.toString('hex')).toBe(
      ['01', '40', '0000000000000000', '0000', '00000009', '02', '0102030405060708'].join(''),
    )
  })

  it('WINDOW_UPDATE carries the credit as a u32 big-endian after the kind, on the stream id', () => {
    const bytes = asBuffer(encodeControl(5, { kind: ControlKind.WINDOW_UPDATE, bytes: 0x0001_0000 }))
    expect(bytes.toString('hex')).toBe(
      ['01', '40', '0000000000000005', '0000', '00000005', '06', '00010000'].join(''),
    )
  })

  it('GOAWAY carries the last id as a u64 big-endian, then the JSON reason', () => {
    const bytes = asBuffer(
      encodeControl(0, {
        kind: ControlKind.GOAWAY,
        lastId: 3,
        code: Code.UNAVAILABLE,
        message: 'bye',
      }),
    )
    const value = bytes.subarray(HEADER_SIZE)
    expect(value[0]).toBe(0x05)
    expect(value.subarray(1, 9).toString('hex')).toBe('0000000000000003')
    expect(value.subarray(9).toString()).toBe('{"code":"UNAVAILABLE","message":"bye"}')
  })

  it('CANCEL carries the code name as plain UTF-8 on the call id', () => {
    const bytes = asBuffer(encodeControl(9, { kind: ControlKind.CANCEL, code: Code.DEADLINE_EXCEEDED }))
    expect(bytes.readUInt32BE(6)).toBe(9)
    expect(bytes.subarray(HEADER_SIZE).toString('latin1')).toBe('\x04DEADLINE_EXCEEDED')
  })

  it('HELLO carries the capabilities as UTF-8 JSON after the kind', () => {
    const capabilities: Capabilities = { version: 1, features: ['cancel', 'ping'] }
    const bytes = asBuffer(encodeControl(0, { kind: ControlKind.HELLO, capabilities }))
    expect(bytes.subarray(HEADER_SIZE).toString('latin1')).toBe(`\x01${JSON.stringify(capabilities)}`)
  })
})

describe('control frames round-trip', () => {
  it('HELLO with every capability field', () => {
    const capabilities: Capabilities = {
      version: 1,
      features: ['cancel', 'ping', 'goaway', 'flow'],
      codecs: ['gzip'],
      initialWindow: 65536,
      maxConcurrentStreams: 100,
      maxFrameSize: 1 << 24,
    }
    const { frame, decoded } = roundTrip(0, { kind: ControlKind.HELLO, capabilities })
    expect(frame.flags).toBe(Flags.CONTROL)
    expect(frame.type).toBe('')
    expect(decoded).toEqual({ kind: ControlKind.HELLO, capabilities })
  })

  it('PING and PONG with their 8 opaque bytes', () => {
    for (const kind of [ControlKind.PING, ControlKind.PONG] as const) {
      const { decoded } = roundTrip(0, { kind, payload: PING_PAYLOAD })
      expect(decoded?.kind).toBe(kind)
      expect(asBuffer((decoded as { payload: Uint8Array }).payload).equals(PING_PAYLOAD)).toBe(true)
    }
  })

  it('CANCEL with each code, on the id of the call', () => {
    for (const code of [Code.CANCELLED, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED]) {
      const { frame, decoded } = roundTrip(42, { kind: ControlKind.CANCEL, code })
      expect(frame.id).toBe(42)
      expect(decoded).toEqual({ kind: ControlKind.CANCEL, code })
    }
  })

  it('GOAWAY with a last id that needs all 64 bits', () => {
    const message: ControlMessage = {
      kind: ControlKind.GOAWAY,
      lastId: 2n ** 64n - 1n,
      code: Code.UNAVAILABLE,
      message: 'server shutting down',
    }
    expect(roundTrip(0, message).decoded).toEqual(message)
    const small: ControlMessage = { ...message, lastId: 17 }
    expect(roundTrip(0, small).decoded).toEqual(small)
  })

  it('HELLO_ACK as a kind byte with no body, on id 0', () => {
    const bytes = asBuffer(encodeControl(0, { kind: ControlKind.HELLO_ACK }))
    expect(bytes.toString('hex')).toBe(['01', '40', '0000000000000000', '0000', '00000001', '07'].join(''))
    expect(roundTrip(0, { kind: ControlKind.HELLO_ACK }).decoded).toEqual({ kind: ControlKind.HELLO_ACK })
  })

  it('WINDOW_UPDATE with credits from 0 to 2^32 - 1', () => {
    for (const bytes of [0, 1, 65536, 0xffff_ffff]) {
      expect(roundTrip(3, { kind: ControlKind.WINDOW_UPDATE, bytes }).decoded).toEqual({
        kind: ControlKind.WINDOW_UPDATE,
        bytes,
      })
    }
  })
})

describe('decodeControl is lenient where the notes allow and strict elsewhere', () => {
  it('returns undefined for a kind it does not know, so newer peers can add kinds', () => {
    for (const kind of [0x00, 0x7f, 0xee, 0xff]) {
      expect(decodeControl(controlFrame(Buffer.of(kind, 1, 2, 3)))).toBeUndefined()
    }
  })

  it('reads a CANCEL with no body, or with an unknown code name, as CANCELLED', () => {
    expect(decodeControl(controlFrame(Buffer.of(0x04), 1))).toEqual({
      kind: ControlKind.CANCEL,
      code: Code.CANCELLED,
    })
    expect(decodeControl(controlFrame(Buffer.from('\x04NOT_A_CODE', 'latin1'), 1))).toEqual({
      kind: ControlKind.CANCEL,
      code: Code.CANCELLED,
    })
  })

  it('ignores unknown HELLO fields and drops fields of the wrong type', () => {
    const json = JSON.stringify({
      version: 2,
      features: ['ping', 7, 'future-thing'],
      codecs: 'gzip',
      initialWindow: -5,
      maxConcurrentStreams: 1.5,
      maxFrameSize: 1024,
      somethingNew: { nested: true },
    })
    expect(decodeControl(controlFrame(Buffer.from(`\x01${json}`, 'latin1')))).toEqual({
      kind: ControlKind.HELLO,
      capabilities: { version: 2, features: ['ping', 'future-thing'], maxFrameSize: 1024 },
    })
  })

  it('fills a HELLO without version or features with version 1 and no features', () => {
    expect(decodeControl(controlFrame(Buffer.from('\x01{}', 'latin1')))).toEqual({
      kind: ControlKind.HELLO,
      capabilities: { version: 1, features: [] },
    })
  })

  it('reads a GOAWAY reason object without a known code as UNAVAILABLE, keeping a string message', () => {
    expect(decodeControl(controlFrame(goaway('{"code":"NOPE","message":"bye","extra":1}')))).toEqual({
      kind: ControlKind.GOAWAY,
      lastId: 1,
      code: Code.UNAVAILABLE,
      message: 'bye',
    })
    expect(decodeControl(controlFrame(goaway('{"code":"INTERNAL","message":7}')))).toEqual({
      kind: ControlKind.GOAWAY,
      lastId: 1,
      code: Code.INTERNAL,
      message: '',
    })
  })

  it('reads a GOAWAY with no reason as UNAVAILABLE with an empty message', () => {
    const value = Buffer.alloc(9)
    value[0] = 0x05
    value.writeBigUInt64BE(8n, 1)
    expect(decodeControl(controlFrame(value))).toEqual({
      kind: ControlKind.GOAWAY,
      lastId: 8,
      code: Code.UNAVAILABLE,
      message: '',
    })
  })

  const malformed: Array<[string, Buffer]> = [
    ['an empty value (no kind byte)', Buffer.alloc(0)],
    ['a HELLO whose body is not JSON', Buffer.from('\x01{nope', 'latin1')],
    ['a HELLO whose body is JSON null', Buffer.from('\x01null', 'latin1')],
    ['a HELLO whose body is a JSON string', Buffer.from('\x01"hi"', 'latin1')],
    ['a PING with 7 bytes', Buffer.concat([Buffer.of(0x02), Buffer.alloc(7)])],
    ['a PING with 9 bytes', Buffer.concat([Buffer.of(0x02), Buffer.alloc(9)])],
    ['a PONG with no bytes', Buffer.of(0x03)],
    ['a GOAWAY shorter than its 8-byte last id', Buffer.concat([Buffer.of(0x05), Buffer.alloc(7)])],
    [
      'a GOAWAY whose reason is not JSON',
      Buffer.concat([Buffer.of(0x05), Buffer.alloc(8), Buffer.from('oops')]),
    ],
    ['a WINDOW_UPDATE with 3 bytes', Buffer.of(0x06, 0, 0, 1)],
    ['a WINDOW_UPDATE with 5 bytes', Buffer.of(0x06, 0, 0, 0, 1, 0)],
    ['a HELLO whose body is empty', Buffer.of(0x01)],
    ['a HELLO whose body is a JSON array', Buffer.from('\x01[]', 'latin1')],
    ['a GOAWAY whose reason is JSON null', goaway('null')],
    ['a GOAWAY whose reason is a JSON number', goaway('5')],
    ['a GOAWAY whose reason is a JSON string', goaway('"x"')],
    ['a GOAWAY whose reason is a JSON array', goaway('[{"code":"UNAVAILABLE"}]')],
    ['a GOAWAY whose reason is only whitespace', goaway(' ')],
    ['a HELLO_ACK with a body byte', Buffer.of(0x07, 0x00)],
    ['a HELLO_ACK with a JSON body', Buffer.from('\x07{}', 'latin1')],
  ]
  for (const [name, value] of malformed) {
    it(`rejects ${name} with PROTOCOL_ERROR`, () => {
      expectProtocolError(() => decodeControl(controlFrame(value)))
    })
  }
})

describe('encodeControl input checks', () => {
  it('refuses a PING or PONG payload that is not 8 bytes with INVALID_ARGUMENT', () => {
    for (const kind of [ControlKind.PING, ControlKind.PONG] as const) {
      for (const size of [0, 7, 9]) {
        let thrown: unknown
        try {
          encodeControl(0, { kind, payload: Buffer.alloc(size) })
        } catch (err) {
          thrown = err
        }
        expect(RpcError.is(thrown, Code.INVALID_ARGUMENT)).toBe(true)
      }
    }
  })

  it('refuses a WINDOW_UPDATE credit outside 0..2^32 - 1 or not an integer with INVALID_ARGUMENT', () => {
    for (const bytes of [-1, 0x1_0000_0000, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const err = expectInvalidArgument(() => encodeControl(1, { kind: ControlKind.WINDOW_UPDATE, bytes }))
      expect(err.message).toContain('window update')
    }
  })

  it('encodes the WINDOW_UPDATE bounds 0 and 2^32 - 1', () => {
    expect(encodeControl(1, { kind: ControlKind.WINDOW_UPDATE, bytes: 0 }).subarray(HEADER_SIZE)).toEqual(
      Uint8Array.of(0x06, 0, 0, 0, 0),
    )
    expect(
      encodeControl(1, { kind: ControlKind.WINDOW_UPDATE, bytes: 0xffff_ffff }).subarray(HEADER_SIZE),
    ).toEqual(Uint8Array.of(0x06, 0xff, 0xff, 0xff, 0xff))
  })
})
