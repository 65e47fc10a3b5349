import { randomBytes } from 'node:crypto'
import type { HostName } from './hosts'
import { type CryptoKey, nodeCrypto, signingAlgorithm } from './keys'
import { CLOCK_SKEW_MS, type KeyAlgorithm } from './options'
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  type Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Name,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from './x509'

const DAY_MS = 24 * 60 * 60 * 1000
const SERIAL_BYTES = 16

/** The key and name that sign a certificate: the CA's, or the certificate's own when self-signed. */
export interface Signer {
  /** The issuer name; for a CA, its certificate's subject exactly as encoded, so chain building matches it. */
  name: Name
  key: CryptoKey
  algorithm: KeyAlgorithm
  /** The CA's subject key identifier (hex), copied into the leaf's authority key identifier. */
  keyId?: string
  /** A leaf never outlives its CA. */
  notAfter?: Date
}

export interface CertificateSpec {
  commonName: string
  publicKey: CryptoKey
  signer: Signer
  validityDays: number
  extensions: Extension[]
}

/** Signs a certificate and returns it as PEM. */
export async function createCertificate(spec: CertificateSpec): Promise<string> {
  const now = Date.now()
  let notAfter = new Date(now + spec.validityDays * DAY_MS)
  if (spec.signer.notAfter !== undefined && spec.signer.notAfter < notAfter) notAfter = spec.signer.notAfter
  const certificate = await X509CertificateGenerator.create(
    {
      serialNumber: randomSerialNumber(),
      subject: subjectName(spec.commonName),
      issuer: spec.signer.name,
      notBefore: new Date(now - CLOCK_SKEW_MS),
      notAfter,
      publicKey: spec.publicKey,
      signingKey: spec.signer.key,
      signingAlgorithm: signingAlgorithm(spec.signer.algorithm),
      extensions: spec.extensions,
    },
    nodeCrypto,
  )
  return certificate.toString('pem')
}

/**
 * A distinguished name holding only a commonName. Given as a typed value, because the library reads plain
 * strings as RFC 4514 text (quotes, backslashes and a leading '#' change the value). UTF8String is what
 * RFC 5280 asks new certificates to use.
 */
export function subjectName(commonName: string): Name {
  return new Name([{ CN: [{ utf8String: commonName }] }])
}

/** Extensions of a certificate authority that may sign leaf certificates, but no further CAs. */
export async function authorityExtensions(publicKey: CryptoKey): Promise<Extension[]> {
  return [
    new BasicConstraintsExtension(true, 0, true),
    new KeyUsagesExtension(
      KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign | KeyUsageFlags.digitalSignature,
      true,
    ),
    await SubjectKeyIdentifierExtension.create(publicKey, false, nodeCrypto),
  ]
}

export interface LeafExtensionsSpec {
  publicKey: CryptoKey
  algorithm: KeyAlgorithm
  usage: 'server' | 'client'
  hosts: HostName[]
  authorityKeyId?: string
}

/** Extensions of an end-entity certificate used for one side of a TLS connection. */
export async function leafExtensions(spec: LeafExtensionsSpec): Promise<Extension[]> {
  // RSA key exchange (TLS 1.2 without ECDHE) encrypts to the key, so RSA leaves also get keyEncipherment.
  const keyUsage =
    spec.algorithm === 'rsa-2048'
      ? KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment
      : KeyUsageFlags.digitalSignature
  const extensions: Extension[] = [
    new BasicConstraintsExtension(false, undefined, true),
    new KeyUsagesExtension(keyUsage, true),
    new ExtendedKeyUsageExtension([
      spec.usage === 'server' ? ExtendedKeyUsage.serverAuth : ExtendedKeyUsage.clientAuth,
    ]),
  ]
  if (spec.hosts.length > 0) {
    extensions.push(
      new SubjectAlternativeNameExtension(spec.hosts.map((h) => ({ type: h.type, value: h.value }))),
    )
  }
  extensions.push(await SubjectKeyIdentifierExtension.create(spec.publicKey, false, nodeCrypto))
  if (spec.authorityKeyId !== undefined) {
    extensions.push(new AuthorityKeyIdentifierExtension(spec.authorityKeyId))
  }
  return extensions
}

/** 16 random bytes, kept positive and without a leading zero byte so the DER integer is exactly 16 bytes long. */
function randomSerialNumber(): string {
  const bytes = randomBytes(SERIAL_BYTES)
  bytes[0] = bytes[0] & 0x7f || 0x01
  return bytes.toString('hex')
}

/** The parts of a CA certificate a leaf must repeat: subject name (as encoded), key id and expiry. */
export function describeAuthority(cert: string): Pick<Signer, 'name' | 'keyId' | 'notAfter'> {
  const certificate = new X509Certificate(cert)
  return {
    name: certificate.subjectName,
    keyId: certificate.getExtension(SubjectKeyIdentifierExtension)?.keyId,
    notAfter: certificate.notAfter,
  }
}
