import { Code, RpcError } from '@srpc/protocol'

/**
 * Maps a platform error (socket, TLS, DNS) to a code, keeping the original as `cause`.
 * A TLS failure that a retry cannot fix (a certificate the client does not trust, a host-name
 * mismatch, a server that wants a client certificate) is a configuration error, not an outage:
 * it becomes UNAUTHENTICATED with a sentence that says what to change, instead of OpenSSL's text.
 */
export function fromPlatformError(err: unknown, context: string): RpcError {
  if (err instanceof RpcError) return err
  const errno = (err as NodeJS.ErrnoException | undefined)?.code
  const detail = err instanceof Error ? err.message : String(err)
  // An AbortSignal's own reason is a DOMException: it has a name, and a numeric `code`.
  const name = err instanceof Error ? err.name : undefined
  if (name === 'AbortError') return new RpcError(Code.CANCELLED, `${context}: ${detail}`, { cause: err })
  if (name === 'TimeoutError') {
    return new RpcError(Code.DEADLINE_EXCEEDED, `${context}: ${detail}`, { cause: err })
  }
  if (errno === 'ABORT_ERR') return new RpcError(Code.CANCELLED, `${context}: ${detail}`, { cause: err })
  const tls = typeof errno === 'string' ? describeTlsFailure(errno, err as TlsError) : undefined
  if (tls !== undefined) return new RpcError(Code.UNAUTHENTICATED, `${context}: ${tls}`, { cause: err })
  return new RpcError(Code.UNAVAILABLE, `${context}: ${detail}`, { cause: err })
}

/** What Node attaches to a host-name mismatch (ERR_TLS_CERT_ALTNAME_INVALID). */
interface TlsError extends Error {
  host?: string
  cert?: { subjectaltname?: string; subject?: { CN?: string } }
  reason?: string
}

/**
 * A plain sentence for a TLS failure that is a configuration error, or undefined for anything
 * else. The client is the only side that meets these: the server's failures happen before it
 * has a connection. An alert code (ERR_SSL_…) is what the server told us about our certificate.
 */
function describeTlsFailure(errno: string, err: TlsError): string | undefined {
  switch (errno) {
    case 'ERR_TLS_CERT_ALTNAME_INVALID': {
      const names = certificateNames(err)
      return names !== undefined && err.host !== undefined
        ? `the server's certificate is for ${names}, not ${err.host}`
        : `the server's certificate does not name the host dialed (${err.reason ?? err.message})`
    }
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return "the server's certificate is not signed by a CA this client trusts (check the ca in the tls options)"
    case 'CERT_HAS_EXPIRED':
      return "the server's certificate has expired"
    case 'CERT_NOT_YET_VALID':
      return "the server's certificate is not valid yet (check the clocks)"
    case 'CERT_REVOKED':
      return "the server's certificate has been revoked"
    case 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED':
      return 'the server requires a client certificate: pass cert and key in the tls options'
    // TLS 1.2 has no alert for a missing client certificate: the server fails the handshake.
    case 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE':
      return 'the server refused the TLS handshake: it may require a client certificate (pass cert and key in the tls options) or share no cipher with this client'
    case 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA':
      return 'the server does not trust the client certificate: it is not signed by a CA the server accepts'
    case 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE':
    case 'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE':
    case 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED':
    case 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED':
    case 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN':
    case 'ERR_SSL_TLSV1_ALERT_DECRYPT_ERROR':
    case 'ERR_SSL_TLSV1_ALERT_ACCESS_DENIED':
      return `the server rejected the client certificate (${alertName(errno)})`
    default:
      return undefined
  }
}

/** The names a certificate is valid for, from its subjectAltName ("DNS:localhost, IP Address:::1"). */
function certificateNames(err: TlsError): string | undefined {
  const altNames = err.cert?.subjectaltname
  if (altNames) return altNames.replace(/(?:DNS|IP Address):/g, '')
  return err.cert?.subject?.CN
}

/** ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE → "alert bad certificate". */
function alertName(errno: string): string {
  return errno
    .replace(/^ERR_SSL_(?:SSLV3|TLSV1|TLSV13)_/, '')
    .replace(/_/g, ' ')
    .toLowerCase()
}
