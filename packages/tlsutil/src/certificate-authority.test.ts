import { createPrivateKey, X509Certificate } from 'node:crypto'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
} from './certificate-authority'
import { selfSigned } from './self-signed'
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  X509Certificate as PeculiarCertificate,
  SubjectKeyIdentifierExtension,
} from './x509'

const DAY_MS = 24 * 60 * 60 * 1000

describe('createCertificateAuthority', () => {
  it('makes a CA certificate that may sign leaf certificates only', async () => {
    const ca = await createCertificateAuthority()
    const cert = new X509Certificate(ca.cert)
    expect(cert.ca).toBe(true)
    expect(cert.issuer).toBe(cert.subject)
    expect(cert.subject).toMatch(/^CN=srpc CA [0-9a-f]{8}$/)
    expect(cert.checkPrivateKey(createPrivateKey(ca.key))).toBe(true)

    const parsed = new PeculiarCertificate(ca.cert)
    const constraints = parsed.getExtension(BasicConstraintsExtension)
    expect(constraints).toMatchObject({ ca: true, pathLength: 0, critical: true })
    const keyUsage = parsed.getExtension(KeyUsagesExtension)
    expect(keyUsage?.critical).toBe(true)
    expect(keyUsage!.usages & KeyUsageFlags.keyCertSign).toBe(KeyUsageFlags.keyCertSign)
  })

  it('is valid for ten years by default', async () => {
    const cert = new X509Certificate((await createCertificateAuthority()).cert)
    const days = (Date.parse(cert.validTo) - Date.now()) / DAY_MS
    expect(days).toBeGreaterThan(3649)
    expect(days).toBeLessThanOrEqual(3650)
  })

  it('gives every CA a distinct name unless one is chosen', async () => {
    const [a, b, named] = await Promise.all([
      createCertificateAuthority(),
      createCertificateAuthority(),
      createCertificateAuthority({ commonName: 'Team CA', algorithm: 'rsa-2048' }),
    ])
    expect(new X509Certificate(a.cert).subject).not.toBe(new X509Certificate(b.cert).subject)
    expect(new X509Certificate(named.cert).subject).toBe('CN=Team CA')
    expect(createPrivateKey(named.key).asymmetricKeyType).toBe('rsa')
  })
})

describe('issueCertificate', () => {
  let ca: CertificateAuthority
  beforeAll(async () => {
    ca = await createCertificateAuthority()
  })

  it('issues a server certificate for the hosts, signed by the CA', async () => {
    const material = await issueCertificate(ca, { hosts: ['localhost', '127.0.0.1', '::1'], usage: 'server' })
    const caCert = new X509Certificate(ca.cert)
    const cert = new X509Certificate(material.cert)
    expect(material.ca).toBe(ca.cert)
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1')
    expect(cert.subject).toBe('CN=localhost')
    expect(cert.issuer).toBe(caCert.subject)
    expect(cert.ca).toBe(false)
    expect(cert.checkIssued(caCert)).toBe(true)
    expect(cert.verify(caCert.publicKey)).toBe(true)
    expect(cert.checkPrivateKey(createPrivateKey(material.key))).toBe(true)

    const parsed = new PeculiarCertificate(material.cert)
    expect(parsed.getExtension(ExtendedKeyUsageExtension)?.usages).toEqual([ExtendedKeyUsage.serverAuth])
    expect(parsed.getExtension(KeyUsagesExtension)?.usages).toBe(KeyUsageFlags.digitalSignature)
    // Chain building pairs the leaf with its CA by key id as well as by name.
    const caKeyId = new PeculiarCertificate(ca.cert).getExtension(SubjectKeyIdentifierExtension)?.keyId
    expect(caKeyId).toMatch(/^[0-9a-f]{40}$/)
    expect(parsed.getExtension(AuthorityKeyIdentifierExtension)?.keyId).toBe(caKeyId)
  })

  it('issues a client certificate with clientAuth and, without hosts, no subjectAltName', async () => {
    const material = await issueCertificate(ca, { usage: 'client' })
    const cert = new X509Certificate(material.cert)
    expect(cert.subjectAltName).toBeUndefined()
    expect(cert.subject).toBe('CN=srpc client')
    expect(cert.checkIssued(new X509Certificate(ca.cert))).toBe(true)
    const parsed = new PeculiarCertificate(material.cert)
    expect(parsed.getExtension(ExtendedKeyUsageExtension)?.usages).toEqual([ExtendedKeyUsage.clientAuth])
  })

  it('adds keyEncipherment for an RSA key', async () => {
    const material = await issueCertificate(ca, {
      hosts: ['localhost'],
      usage: 'server',
      algorithm: 'rsa-2048',
    })
    expect(createPrivateKey(material.key).asymmetricKeyDetails).toMatchObject({ modulusLength: 2048 })
    expect(new PeculiarCertificate(material.cert).getExtension(KeyUsagesExtension)?.usages).toBe(
      KeyUsageFlags.digitalSignature | KeyUsageFlags.keyEncipherment,
    )
  })

  it('signs with an RSA CA as well', async () => {
    const rsaCa = await createCertificateAuthority({ algorithm: 'rsa-2048' })
    const material = await issueCertificate(rsaCa, { hosts: ['localhost'], usage: 'server' })
    expect(new X509Certificate(material.cert).verify(new X509Certificate(rsaCa.cert).publicKey)).toBe(true)
  })

  it('never lets a certificate outlive its CA', async () => {
    const shortCa = await createCertificateAuthority({ validityDays: 2 })
    const material = await issueCertificate(shortCa, {
      hosts: ['localhost'],
      usage: 'server',
      validityDays: 30,
    })
    expect(new X509Certificate(material.cert).validTo).toBe(new X509Certificate(shortCa.cert).validTo)
  })

  it('accepts a CA given as plain PEM strings, such as one read back from disk', async () => {
    const copy = { key: ca.key, cert: ca.cert }
    const material = await issueCertificate(copy, { hosts: ['localhost'], usage: 'server' })
    expect(new X509Certificate(material.cert).verify(new X509Certificate(ca.cert).publicKey)).toBe(true)
  })

  it('refuses a server certificate without hosts', async () => {
    await expect(issueCertificate(ca, { usage: 'server' })).rejects.toMatchObject({ code: 'EMPTY_HOSTS' })
    await expect(issueCertificate(ca, { usage: 'server', hosts: [] })).rejects.toMatchObject({
      code: 'EMPTY_HOSTS',
    })
  })

  it('refuses a malformed host or usage', async () => {
    await expect(issueCertificate(ca, { usage: 'client', hosts: ['x:1'] })).rejects.toMatchObject({
      code: 'INVALID_HOST',
    })
    await expect(
      issueCertificate(ca, { usage: 'peer' as never, hosts: ['localhost'] }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: `usage must be 'server' or 'client', got "peer"`,
    })
  })

  it('refuses a CA that cannot sign', async () => {
    const leaf = await selfSigned(['localhost'])
    await expect(issueCertificate(leaf, { usage: 'client' })).rejects.toMatchObject({
      code: 'INVALID_CA',
      message: expect.stringMatching(/is not a CA certificate/),
    })
    const other = await createCertificateAuthority()
    await expect(
      issueCertificate({ key: other.key, cert: ca.cert }, { usage: 'client' }),
    ).rejects.toMatchObject({
      code: 'INVALID_CA',
      message: 'ca.key does not belong to ca.cert',
    })
    await expect(issueCertificate({ key: 'nope', cert: ca.cert }, { usage: 'client' })).rejects.toMatchObject(
      {
        code: 'INVALID_CA',
        message: 'ca.key is not a readable PEM private key',
      },
    )
    await expect(issueCertificate({ key: ca.key, cert: 'nope' }, { usage: 'client' })).rejects.toMatchObject({
      code: 'INVALID_CA',
      message: 'ca.cert is not a readable PEM certificate',
    })
  })
})
