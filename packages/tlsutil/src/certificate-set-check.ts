import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto'

/** The five pieces of a certificate set, named like the fields a check failure points at. */
export type CertificateSetPart = 'ca' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey'

export interface CertificateSetParts {
  ca: string
  serverCert: string
  serverKey: string
  clientCert: string
  clientKey: string
}

export interface CertificateSetProblem {
  part: CertificateSetPart
  message: string
  cause?: unknown
}

/**
 * Checks that a set holds together before it is used or saved: every PEM parses, the CA is a CA, each key
 * belongs to its certificate, both leaves were signed by the CA, and nothing has expired. Returns the first
 * problem, or undefined. Done with node:crypto, so a broken file is reported by name instead of failing
 * later as an opaque TLS handshake error.
 */
export function findCertificateSetProblem(
  parts: CertificateSetParts,
  now = Date.now(),
): CertificateSetProblem | undefined {
  const ca = parseCertificate(parts.ca, 'ca')
  if (!(ca instanceof X509Certificate)) return ca
  if (!ca.ca)
    return { part: 'ca', message: `is not a CA certificate (${ca.subject}): basicConstraints cA is not set` }
  const caExpiry = expiryProblem(ca, 'ca', now)
  if (caExpiry) return caExpiry

  for (const side of ['server', 'client'] as const) {
    const certPart = `${side}Cert` as const
    const keyPart = `${side}Key` as const
    const cert = parseCertificate(parts[certPart], certPart)
    if (!(cert instanceof X509Certificate)) return cert
    let key: KeyObject
    try {
      key = createPrivateKey(parts[keyPart])
    } catch (cause) {
      return { part: keyPart, message: 'is not a readable PEM private key', cause }
    }
    if (!cert.checkPrivateKey(key)) {
      return { part: keyPart, message: `does not belong to the ${side} certificate (${cert.subject})` }
    }
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
      return { part: certPart, message: `was not issued by the CA in this set (${ca.subject})` }
    }
    const expiry = expiryProblem(cert, certPart, now)
    if (expiry) return expiry
  }
  return undefined
}

function parseCertificate(pem: string, part: CertificateSetPart): X509Certificate | CertificateSetProblem {
  try {
    return new X509Certificate(pem)
  } catch (cause) {
    return { part, message: 'is not a readable PEM certificate', cause }
  }
}

function expiryProblem(
  cert: X509Certificate,
  part: CertificateSetPart,
  now: number,
): CertificateSetProblem | undefined {
  if (Date.parse(cert.validTo) > now) return undefined
  return { part, message: `expired on ${cert.validTo}` }
}
