import { createPrivateKey, X509Certificate } from 'node:crypto'
import * as tls from 'node:tls'
import { describe, expect, it } from 'vitest'
import { selfSigned } from './self-signed'
import {
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  X509Certificate as PeculiarCertificate,
} from './x509'

const DAY_MS = 24 * 60 * 60 * 1000

describe('selfSigned', () => {
  it('names every host in subjectAltName: DNS names, IPv4 and IPv6', async () => {
    const result = await selfSigned(['127.0.0.1', 'localhost', '::1', 'api.example.com'])
    const cert = new X509Certificate(result.cert)
    expect(cert.subjectAltName).toBe(
      'IP Address:127.0.0.1, DNS:localhost, IP Address:0:0:0:0:0:0:0:1, DNS:api.example.com',
    )
    expect(cert.checkHost('localhost')).toBe('localhost')
    expect(cert.checkIP('::1')).toBe('::1')
    expect(cert.checkIP('127.0.0.2')).toBeUndefined()
  })

  it('uses an ECDSA P-256 key by default, exported as PKCS#8 PEM', async () => {
    const result = await selfSigned(['localhost'])
    const key = createPrivateKey(result.key)
    expect(result.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/)
    expect(key.asymmetricKeyType).toBe('ec')
    expect(key.asymmetricKeyDetails).toMatchObject({ namedCurve: 'prime256v1' })
    expect(new X509Certificate(result.cert).checkPrivateKey(key)).toBe(true)
  })

  it('uses an RSA 2048 key when asked', async () => {
    const result = await selfSigned(['localhost'], { algorithm: 'rsa-2048' })
    const key = createPrivateKey(result.key)
    expect(result.key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/)
    expect(key.asymmetricKeyType).toBe('rsa')
    expect(key.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048 })
    expect(new X509Certificate(result.cert).checkPrivateKey(key)).toBe(true)
  })

  it('is valid from five minutes ago for 365 days, or the days asked for', async () => {
    const before = Date.now()
    const standard = new X509Certificate((await selfSigned(['localhost'])).cert)
    const short = new X509Certificate((await selfSigned(['localhost'], { validityDays: 7 })).cert)
    // X.509 times have whole seconds, so allow one second either way.
    expect(Date.parse(standard.validFrom)).toBeGreaterThanOrEqual(before - 5 * 60_000 - 1000)
    expect(Date.parse(standard.validFrom)).toBeLessThanOrEqual(Date.now() - 5 * 60_000 + 1000)
    expect(Date.parse(standard.validTo) - Date.parse(standard.validFrom)).toBeCloseTo(
      365 * DAY_MS + 5 * 60_000,
      -4,
    )
    expect(Date.parse(short.validTo) - Date.parse(short.validFrom)).toBeCloseTo(7 * DAY_MS + 5 * 60_000, -4)
  })

  it('is a self-issued end-entity server certificate with a random serial number', async () => {
    const [a, b] = await Promise.all([selfSigned(['localhost']), selfSigned(['localhost'])])
    const cert = new X509Certificate(a.cert)
    expect(cert.issuer).toBe(cert.subject)
    expect(cert.subject).toBe('CN=localhost')
    expect(cert.ca).toBe(false)
    expect(cert.verify(cert.publicKey)).toBe(true)
    expect(cert.serialNumber).toMatch(/^[0-7][0-9A-F]{31}$/)
    expect(cert.serialNumber).not.toBe(new X509Certificate(b.cert).serialNumber)

    const parsed = new PeculiarCertificate(a.cert)
    expect(parsed.getExtension(BasicConstraintsExtension)?.ca).toBe(false)
    expect(parsed.getExtension(KeyUsagesExtension)?.usages).toBe(KeyUsageFlags.digitalSignature)
    expect(parsed.getExtension(ExtendedKeyUsageExtension)?.usages).toEqual([ExtendedKeyUsage.serverAuth])
  })

  it('takes a custom commonName, which may hold any characters', async () => {
    const result = await selfSigned(['localhost'], { commonName: '#dev, "srpc" = ok \\ é' })
    expect(new PeculiarCertificate(result.cert).subjectName.getField('CN')).toEqual([
      '#dev, "srpc" = ok \\ é',
    ])
  })

  it('returns server options, and client options that verify against the certificate itself', async () => {
    const result = await selfSigned(['localhost'])
    expect(result.ca).toBe(result.cert)
    expect(result.serverOptions).toEqual({ key: result.key, cert: result.cert, minVersion: 'TLSv1.2' })
    expect(result.clientOptions).toEqual({
      ca: result.cert,
      rejectUnauthorized: true,
      checkServerIdentity: tls.checkServerIdentity,
      minVersion: 'TLSv1.2',
    })
  })

  it('fails with a clear error for a bad host list or option', async () => {
    await expect(selfSigned([])).rejects.toMatchObject({ code: 'EMPTY_HOSTS' })
    await expect(selfSigned(['localhost', 'bad host'])).rejects.toMatchObject({
      code: 'INVALID_HOST',
      message: 'hosts[1] "bad host" contains whitespace',
    })
    await expect(selfSigned(['localhost'], { algorithm: 'ed25519' as never })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/^algorithm must be one of 'ecdsa-p256', 'rsa-2048'/),
    })
    await expect(selfSigned(['localhost'], { validityDays: 0 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/^validityDays must be a whole number/),
    })
    await expect(selfSigned(['localhost'], { validityDays: 1.5 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    })
    await expect(selfSigned(['localhost'], { commonName: '' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/^commonName must be a string of 1 to 64 characters/),
    })
    await expect(selfSigned(['localhost'], { commonName: 'x'.repeat(65) })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    })
  })
})
