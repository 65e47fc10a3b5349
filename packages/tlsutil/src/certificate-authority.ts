import { createPrivateKey, X509Certificate as NodeX509Certificate, randomBytes } from 'node:crypto'
import type { Signer } from './certificate-builder'
import { certificateBuilder } from './certificate-builder-loader'
import { TlsUtilError } from './errors'
import { type HostName, parseHosts } from './hosts'
import { exportPrivateKeyPem, generateKeyPair, importSigningKey } from './keys'
import {
  DEFAULT_CA_VALIDITY_DAYS,
  DEFAULT_LEAF_VALIDITY_DAYS,
  type KeyAlgorithm,
  resolveAlgorithm,
  resolveCommonName,
  resolveOptionsObject,
  resolveValidityDays,
} from './options'
import type { TlsMaterial } from './tls-options'

/**
 * A certificate authority: its private key and self-signed certificate, as PEM. Any object with these two
 * fields works, so a CA saved elsewhere can be used again; one made by `createCertificateAuthority`
 * also carries an imported signing key internally, which saves re-parsing it on every issue.
 */
export interface CertificateAuthority {
  readonly key: string
  readonly cert: string
}

export interface CertificateAuthorityOptions {
  /** Key type; default `'ecdsa-p256'`. */
  algorithm?: KeyAlgorithm
  /** Subject commonName; default `srpc CA <random>`, so two CAs never share a name. */
  commonName?: string
  /** Days the CA stays valid; default 3650. */
  validityDays?: number
}

export type CertificateUsage = 'server' | 'client'

export interface IssueCertificateOptions {
  /** DNS names and IP addresses for subjectAltName; required for a server certificate, optional for a client. */
  hosts?: string[]
  /** `server` adds extendedKeyUsage serverAuth, `client` adds clientAuth. */
  usage: CertificateUsage
  /** Subject commonName; default the first host, or `srpc client`. */
  commonName?: string
  /** Key type of the new certificate (the CA signs with its own key); default `'ecdsa-p256'`. */
  algorithm?: KeyAlgorithm
  /** Days the certificate stays valid (never past the CA's own expiry); default 365. */
  validityDays?: number
}

interface AuthorityHandle {
  key: string
  cert: string
  signer: Signer
}

// Signing keys of CAs created here, keyed by the returned object; plain objects fall back to importing PEM.
const handles = new WeakMap<CertificateAuthority, AuthorityHandle>()

/** A new CA key and self-signed CA certificate (basicConstraints cA, keyCertSign), for issuing TLS certificates. */
export async function createCertificateAuthority(
  options?: CertificateAuthorityOptions,
): Promise<CertificateAuthority> {
  const opts = resolveOptionsObject(options, 'createCertificateAuthority options')
  const algorithm = resolveAlgorithm(opts.algorithm)
  const validityDays = resolveValidityDays(opts.validityDays, DEFAULT_CA_VALIDITY_DAYS)
  const commonName = resolveCommonName(opts.commonName, `srpc CA ${randomBytes(4).toString('hex')}`)

  const { authorityExtensions, createCertificate, describeAuthority, subjectName } =
    await certificateBuilder()
  const keys = await generateKeyPair(algorithm)
  const cert = await createCertificate({
    commonName,
    publicKey: keys.publicKey,
    signer: { name: subjectName(commonName), key: keys.privateKey, algorithm },
    validityDays,
    extensions: await authorityExtensions(keys.publicKey),
  })
  const ca: CertificateAuthority = Object.freeze({ key: exportPrivateKeyPem(keys.privateKey), cert })
  handles.set(ca, {
    key: ca.key,
    cert,
    signer: { ...describeAuthority(cert), key: keys.privateKey, algorithm },
  })
  return ca
}

/** A new key and a certificate for it, signed by `ca`, for a TLS server or for a client in mutual TLS. */
export async function issueCertificate(
  ca: CertificateAuthority,
  options: IssueCertificateOptions,
): Promise<TlsMaterial> {
  const opts = resolveOptionsObject(options, 'issueCertificate options')
  if (opts.usage !== 'server' && opts.usage !== 'client') {
    throw new TlsUtilError(
      'INVALID_ARGUMENT',
      `usage must be 'server' or 'client', got ${JSON.stringify(opts.usage)}`,
    )
  }
  const usage = opts.usage
  // A server is reached by name, so it must have one; a client certificate identifies a peer, not an address.
  const hosts: HostName[] =
    usage === 'server' || (opts.hosts !== undefined && opts.hosts.length > 0) ? parseHosts(opts.hosts) : []
  const algorithm = resolveAlgorithm(opts.algorithm)
  const validityDays = resolveValidityDays(opts.validityDays, DEFAULT_LEAF_VALIDITY_DAYS)
  const commonName = resolveCommonName(opts.commonName, hosts[0]?.value ?? 'srpc client')
  const { signer } = await authorityHandle(ca)
  const { createCertificate, leafExtensions } = await certificateBuilder()

  const keys = await generateKeyPair(algorithm)
  const cert = await createCertificate({
    commonName,
    publicKey: keys.publicKey,
    signer,
    validityDays,
    extensions: await leafExtensions({
      publicKey: keys.publicKey,
      algorithm,
      usage,
      hosts,
      authorityKeyId: signer.keyId,
    }),
  })
  return { key: exportPrivateKeyPem(keys.privateKey), cert, ca: ca.cert }
}

async function authorityHandle(ca: CertificateAuthority): Promise<AuthorityHandle> {
  const cached = handles.get(ca)
  if (cached !== undefined && cached.key === ca.key && cached.cert === ca.cert) return cached
  if (ca === null || typeof ca !== 'object' || typeof ca.key !== 'string' || typeof ca.cert !== 'string') {
    throw new TlsUtilError('INVALID_CA', 'ca must be an object with PEM strings `key` and `cert`')
  }

  let certificate: NodeX509Certificate
  try {
    certificate = new NodeX509Certificate(ca.cert)
  } catch (cause) {
    throw new TlsUtilError('INVALID_CA', 'ca.cert is not a readable PEM certificate', { cause })
  }
  if (!certificate.ca) {
    throw new TlsUtilError(
      'INVALID_CA',
      `ca.cert (${certificate.subject}) is not a CA certificate: basicConstraints cA is not set`,
    )
  }
  if (Date.parse(certificate.validTo) <= Date.now()) {
    throw new TlsUtilError('INVALID_CA', `ca.cert (${certificate.subject}) expired on ${certificate.validTo}`)
  }
  const { key, algorithm } = await importSigningKey(ca.key, 'ca.key')
  if (!certificate.checkPrivateKey(createPrivateKey(ca.key))) {
    throw new TlsUtilError('INVALID_CA', 'ca.key does not belong to ca.cert')
  }
  const { describeAuthority } = await certificateBuilder()
  const handle: AuthorityHandle = {
    key: ca.key,
    cert: ca.cert,
    signer: { ...describeAuthority(ca.cert), key, algorithm },
  }
  handles.set(ca, handle)
  return handle
}
