import { describe, expect, it } from 'vitest'
import { Code, isCode } from './codes'
import { decodeErrorValue, encodeErrorValue, RpcError } from './rpc-error'

describe('the ERROR frame value', () => {
  it('is UTF-8 JSON with the code name and the message', () => {
    const value = encodeErrorValue(new RpcError(Code.NOT_FOUND, 'no route /nope'))
    expect(Buffer.from(value).toString('utf8')).toBe('{"code":"NOT_FOUND","message":"no route /nope"}')
  })

  it('round-trips every code with a non-ASCII message', () => {
    for (const code of Object.values(Code)) {
      const decoded = decodeErrorValue(encodeErrorValue(new RpcError(code, 'héllo ☃ "quoted"\n')))
      expect(decoded).toBeInstanceOf(RpcError)
      expect(decoded.code).toBe(code)
      expect(decoded.message).toBe('héllo ☃ "quoted"\n')
    }
  })

  it('decodes from a view with a byte offset into a larger buffer', () => {
    const backing = Buffer.concat([
      Buffer.from('xxxx'),
      encodeErrorValue(new RpcError(Code.ABORTED, 'a')),
      Buffer.from('yy'),
    ])
    const view = new Uint8Array(backing.buffer, backing.byteOffset + 4, backing.length - 6)
    const decoded = decodeErrorValue(view)
    expect(decoded.code).toBe(Code.ABORTED)
    expect(decoded.message).toBe('a')
  })

  it('from a v1 peer as plain text becomes UNKNOWN with that text as the message', () => {
    const decoded = decodeErrorValue(Buffer.from('handler exploded'))
    expect(decoded.code).toBe(Code.UNKNOWN)
    expect(decoded.message).toBe('handler exploded')
  })

  it('that is empty becomes UNKNOWN with an empty message', () => {
    const decoded = decodeErrorValue(Buffer.alloc(0))
    expect(decoded.code).toBe(Code.UNKNOWN)
    expect(decoded.message).toBe('')
  })

  it('that looks like JSON but is not, or names no known code, is taken as plain text', () => {
    for (const text of [
      '{broken',
      '{"code":"TEAPOT","message":"short and stout"}',
      '{"message":"no code"}',
    ]) {
      const decoded = decodeErrorValue(Buffer.from(text))
      expect(decoded.code).toBe(Code.UNKNOWN)
      expect(decoded.message).toBe(text)
    }
  })

  it('carries details only when asked (the peer negotiated them), byte-for-byte v1 otherwise', () => {
    const err = new RpcError(Code.NOT_FOUND, 'no user 42', { details: { id: '42' } })
    expect(Buffer.from(encodeErrorValue(err)).toString('utf8')).toBe(
      '{"code":"NOT_FOUND","message":"no user 42"}',
    )
    const value = encodeErrorValue(err, true)
    expect(Buffer.from(value).toString('utf8')).toBe(
      '{"code":"NOT_FOUND","message":"no user 42","details":{"id":"42"}}',
    )
    const decoded = decodeErrorValue(value)
    expect(decoded.code).toBe(Code.NOT_FOUND)
    expect(decoded.details).toEqual({ id: '42' })
  })

  it('leaves out details JSON cannot carry instead of failing the frame', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    for (const details of [cyclic, { n: 10n }]) {
      const value = encodeErrorValue(new RpcError(Code.INTERNAL, 'x', { details }), true)
      expect(Buffer.from(value).toString('utf8')).toBe('{"code":"INTERNAL","message":"x"}')
    }
  })

  it('with a known code but no string message keeps the code and an empty message', () => {
    const decoded = decodeErrorValue(Buffer.from('{"code":"INTERNAL","message":42}'))
    expect(decoded.code).toBe(Code.INTERNAL)
    expect(decoded.message).toBe('')
  })
})

describe('RpcError', () => {
  it('carries its code, a fixed name and an optional cause', () => {
    const cause = new Error('root')
    const err = new RpcError(Code.INTERNAL, 'boom', { cause })
    expect(err).toBeInstanceOf(Error)
    expect(err.name).toBe('RpcError')
    expect(err.code).toBe(Code.INTERNAL)
    expect(err.cause).toBe(cause)
  })

  it('is() checks the class and, when given, the code', () => {
    const err = new RpcError(Code.NOT_FOUND, 'x')
    expect(RpcError.is(err)).toBe(true)
    expect(RpcError.is(err, Code.NOT_FOUND)).toBe(true)
    expect(RpcError.is(err, Code.INTERNAL)).toBe(false)
    expect(RpcError.is(Object.assign(new Error('x'), { code: Code.NOT_FOUND }))).toBe(false)
  })

  it('from() keeps an RpcError and wraps anything else with the fallback code', () => {
    const rpc = new RpcError(Code.ABORTED, 'a')
    expect(RpcError.from(rpc)).toBe(rpc)
    const plain = new TypeError('bad')
    const wrapped = RpcError.from(plain)
    expect(wrapped.code).toBe(Code.INTERNAL)
    expect(wrapped.message).toBe('bad')
    expect(wrapped.cause).toBe(plain)
    expect(RpcError.from('text', Code.UNKNOWN).code).toBe(Code.UNKNOWN)
  })
})

describe('Code', () => {
  it('is the closed set of 17 wire names, each equal to its key', () => {
    expect(Object.keys(Code)).toEqual([
      'CANCELLED',
      'UNKNOWN',
      'INVALID_ARGUMENT',
      'DEADLINE_EXCEEDED',
      'NOT_FOUND',
      'ALREADY_EXISTS',
      'PERMISSION_DENIED',
      'RESOURCE_EXHAUSTED',
      'FAILED_PRECONDITION',
      'ABORTED',
      'OUT_OF_RANGE',
      'UNIMPLEMENTED',
      'INTERNAL',
      'UNAVAILABLE',
      'DATA_LOSS',
      'UNAUTHENTICATED',
      'PROTOCOL_ERROR',
    ])
    for (const [key, value] of Object.entries(Code)) expect(value).toBe(key)
  })

  it('isCode accepts only those names', () => {
    expect(isCode('NOT_FOUND')).toBe(true)
    expect(isCode('not_found')).toBe(false)
    expect(isCode('TEAPOT')).toBe(false)
    expect(isCode(5)).toBe(false)
    expect(isCode(undefined)).toBe(false)
  })
})
