import { isIP } from 'node:net'
import * as tls from 'node:tls'
import { TlsUtilError } from './errors'
import { type HostName, parseHost } from './hosts'
import { resolveOptionsObject } from './options'

/** PEM strings for one side of a connection: its key and certificate, and the CA certificate peers verify with. */
export interface TlsMaterial {
  key: string
  cert: string
  /** The CA certificate; for a self-signed certificate, the certificate itself. */
  ca: string
}

/** A private key and the certificate that goes with it, as PEM. */
export interface KeyCertPair {
  key: string
  cert: string
}

export type ServerTlsOptions = tls.TlsOptions & { key: string; cert: string }
export type ClientTlsOptions = tls.ConnectionOptions & { ca: string }

// TLS 1.2 stays allowed for older peers; Node's default maximum (TLS 1.3) is what peers negotiate.
const MIN_TLS_VERSION: tls.SecureVersion = 'TLSv1.2'

/**
 * Options for `tls.createServer`. With `requestClientCert`, the server asks every client for a certificate
 * and refuses the handshake unless it was issued by `material.ca` (mutual TLS).
 */
export function serverTlsOptions(
  material: TlsMaterial,
  options?: { requestClientCert?: boolean },
): ServerTlsOptions {
  const { requestClientCert = false } = resolveOptionsObject(options, 'serverTlsOptions options')
  requirePem(material?.key, 'material.key', 'PRIVATE KEY')
  requirePem(material?.cert, 'material.cert', 'CERTIFICATE')
  const server: ServerTlsOptions = { key: material.key, cert: material.cert, minVersion: MIN_TLS_VERSION }
  if (requestClientCert) {
    requirePem(material.ca, 'material.ca', 'CERTIFICATE')
    server.requestCert = true
    server.rejectUnauthorized = true
    server.ca = material.ca
  }
  return server
}

/**
 * Options for `tls.connect` that verify the server against `ca` — chain and host name, with Node's own
 * `checkServerIdentity`. Pass `identity` to present a client certificate to an mTLS server.
 */
export function clientTlsOptions(
  ca: string,
  identity?: KeyCertPair,
  options?: { servername?: string },
): ClientTlsOptions {
  requirePem(ca, 'ca', 'CERTIFICATE')
  const { servername } = resolveOptionsObject(options, 'clientTlsOptions options')
  const client: ClientTlsOptions = {
    ca,
    rejectUnauthorized: true,
    checkServerIdentity: tls.checkServerIdentity,
    minVersion: MIN_TLS_VERSION,
  }
  if (identity !== undefined) {
    requirePem(identity?.key, 'identity.key', 'PRIVATE KEY')
    requirePem(identity?.cert, 'identity.cert', 'CERTIFICATE')
    client.key = identity.key
    client.cert = identity.cert
  }
  if (servername !== undefined) client.servername = resolveServername(servername)
  return client
}

function resolveServername(servername: unknown): string {
  if (typeof servername === 'string' && isIP(servername) !== 0) {
    // RFC 6066 forbids IP addresses in SNI and Node warns about it; the host itself is what gets checked.
    throw new TlsUtilError(
      'INVALID_ARGUMENT',
      `servername ${JSON.stringify(servername)} is an IP address; pass it as the connection's host instead`,
    )
  }
  let name: HostName
  try {
    name = parseHost(servername as string, 'servername')
  } catch (cause) {
    // Same checks as certificate hosts, but a bad option here is an argument error, not a certificate one.
    throw new TlsUtilError('INVALID_ARGUMENT', (cause as Error).message, { cause })
  }
  if (name.value.startsWith('*')) {
    throw new TlsUtilError(
      'INVALID_ARGUMENT',
      `servername ${JSON.stringify(servername)} cannot be a wildcard`,
    )
  }
  return name.value
}

function requirePem(value: unknown, option: string, label: 'PRIVATE KEY' | 'CERTIFICATE'): void {
  // Keys may be PKCS#8 ("PRIVATE KEY") or older "RSA/EC PRIVATE KEY"; the label check is only a sanity check.
  if (typeof value !== 'string' || !value.includes('-----BEGIN ') || !value.includes(`${label}-----`)) {
    throw new TlsUtilError('INVALID_ARGUMENT', `${option} must be a PEM string containing a ${label}`)
  }
}
