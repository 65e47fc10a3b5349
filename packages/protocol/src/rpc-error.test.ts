import { describe, expect, it } from 'vitest'
import { Code, isCode } from './codes'
import { decodeErrorValue, encodeErrorValue, fromPlatformError, RpcError } from './rpc-error'

const errno = (code: string, message = code) => Object.assign(new Error(message), { code })

describe('the ERROR frame value', () => {
  it('is UTF-8 JSON with the code name and the message', () => {
    const value = encodeErrorValue(new RpcError(Code.NOT_FOUND, 'no route /nope'))
    expect(value.toString('utf8')).toBe('{"code":"NOT_FOUND","message":"no route /nope"}')
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

  it('with a known code but no string message keeps the code and an empty message', () => {
    const decoded = decodeErrorValue(Buffer.from('{"code":"INTERNAL","message":42}'))
    expect(decoded.code).toBe(Code.INTERNAL)
    expect(decoded.message).toBe('')
  })
})

describe('fromPlatformError', () => {
  it('maps ECONNRESET to UNAVAILABLE, keeping the original as cause', () => {
    const original = errno('ECONNRESET', 'read ECONNRESET')
    const mapped = fromPlatformError(original, 'connection failed')
    expect(mapped.code).toBe(Code.UNAVAILABLE)
    expect(mapped.cause).toBe(original)
    expect(mapped.message).toBe('connection failed: read ECONNRESET')
  })

  it('maps ECONNREFUSED and unknown errors to UNAVAILABLE', () => {
    expect(fromPlatformError(errno('ECONNREFUSED'), 'connect').code).toBe(Code.UNAVAILABLE)
    expect(fromPlatformError(new Error('weird'), 'connect').code).toBe(Code.UNAVAILABLE)
    const mapped = fromPlatformError('a string', 'connect')
    expect(mapped.code).toBe(Code.UNAVAILABLE)
    expect(mapped.message).toBe('connect: a string')
  })

  it("maps Node's ABORT_ERR to CANCELLED, keeping the original as cause", () => {
    const original = errno('ABORT_ERR', 'The operation was aborted')
    const mapped = fromPlatformError(original, 'connect')
    expect(mapped.code).toBe(Code.CANCELLED)
    expect(mapped.cause).toBe(original)
  })

  it("maps an aborted AbortSignal's reason (a DOMException) to CANCELLED", () => {
    const controller = new AbortController()
    controller.abort()
    const mapped = fromPlatformError(controller.signal.reason, 'connect')
    expect(mapped.code).toBe(Code.CANCELLED)
    expect(mapped.cause).toBe(controller.signal.reason)
  })

  it("maps a timed-out AbortSignal's reason to DEADLINE_EXCEEDED", () => {
    const reason = new DOMException('The operation timed out.', 'TimeoutError')
    expect(fromPlatformError(reason, 'connect').code).toBe(Code.DEADLINE_EXCEEDED)
  })

  it('maps certificate failures to UNAUTHENTICATED', () => {
    for (const code of [
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'SELF_SIGNED_CERT_IN_CHAIN',
      'CERT_HAS_EXPIRED',
      'CERT_NOT_YET_VALID',
      'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
      'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
    ]) {
      const original = errno(code)
      const mapped = fromPlatformError(original, 'tls')
      expect(mapped.code).toBe(Code.UNAUTHENTICATED)
      expect(mapped.cause).toBe(original)
    }
  })

  it('says what to change for a TLS configuration error, instead of passing on OpenSSL text', () => {
    const openssl =
      '80DC:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../ssl/record/rec_layer_s3.c:1601:SSL alert number 116'
    const cases: [Error, string][] = [
      [
        errno('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', openssl),
        'the server requires a client certificate: pass cert and key in the tls options',
      ],
      [
        errno('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'),
        "the server's certificate is not signed by a CA this client trusts (check the ca in the tls options)",
      ],
      [
        Object.assign(
          errno('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"),
          {
            host: '127.0.0.2',
            cert: { subjectaltname: 'DNS:localhost, IP Address:::1' },
          },
        ),
        "the server's certificate is for localhost, ::1, not 127.0.0.2",
      ],
      [
        errno('ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', openssl),
        'the server does not trust the client certificate: it is not signed by a CA the server accepts',
      ],
      [
        errno('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', openssl),
        'the server rejected the client certificate (alert bad certificate)',
      ],
    ]
    for (const [original, sentence] of cases) {
      const mapped = fromPlatformError(original, 'cannot connect to 127.0.0.2:8443')
      expect(mapped.code).toBe(Code.UNAUTHENTICATED)
      expect(mapped.message).toBe(`cannot connect to 127.0.0.2:8443: ${sentence}`)
      expect(mapped.cause).toBe(original)
    }
  })

  it('returns an RpcError unchanged', () => {
    const err = new RpcError(Code.PROTOCOL_ERROR, 'bad frame')
    expect(fromPlatformError(err, 'ignored')).toBe(err)
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
