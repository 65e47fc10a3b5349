import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { fromPlatformError } from './platform-error'

const errno = (code: string, message = code) => Object.assign(new Error(message), { code })

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
