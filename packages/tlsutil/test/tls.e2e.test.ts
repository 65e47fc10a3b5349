import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  CERTIFICATE_SET_FILES,
  type CertificateAuthority,
  clientTlsOptions,
  createCertificateAuthority,
  ensureCertificateSet,
  issueCertificate,
  loadCertificateSet,
  type SelfSignedResult,
  selfSigned,
  serverTlsOptions,
  type TlsMaterial,
  writeCertificateSet,
} from '../src/index'
import { canListenOn, TlsHarness } from './tls-harness'

const ipv6Available = await canListenOn('::1')
// vitest has no skip reason, so the reason goes into the test name when the case is skipped.
const ipv6Note = ipv6Available ? '' : ' [skipped: this machine cannot bind ::1]'

const harness = new TlsHarness()
afterEach(() => harness.closeAll())

describe('selfSigned', () => {
  let result: SelfSignedResult
  beforeAll(async () => {
    result = await selfSigned(['127.0.0.1', 'localhost', '::1'])
  })

  it('is accepted by a verifying client connecting to 127.0.0.1', async () => {
    const server = await harness.listen(result.serverOptions, '127.0.0.1')
    const exchange = await harness.connect({ ...result.clientOptions, host: '127.0.0.1', port: server.port })
    expect(exchange).toMatchObject({ authorized: true, greeting: 'hello unauthorized\n' })
  })

  it('is accepted by a verifying client that checks the name localhost', async () => {
    const server = await harness.listen(result.serverOptions, '127.0.0.1')
    // Dial the address directly (localhost may resolve to ::1 first) and check the certificate for the name.
    const options = clientTlsOptions(result.ca, undefined, { servername: 'localhost' })
    const exchange = await harness.connect({ ...options, host: '127.0.0.1', port: server.port })
    expect(exchange.authorized).toBe(true)
  })

  it.skipIf(!ipv6Available)(`is accepted by a verifying client connecting to ::1${ipv6Note}`, async () => {
    const server = await harness.listen(result.serverOptions, '::1')
    const exchange = await harness.connect({ ...result.clientOptions, host: '::1', port: server.port })
    expect(exchange.authorized).toBe(true)
  })

  it('negotiates TLS 1.3 by default and still lets a TLS 1.2 client in', async () => {
    const server = await harness.listen(result.serverOptions)
    const modern = await harness.connect({ ...result.clientOptions, host: '127.0.0.1', port: server.port })
    const legacy = await harness.connect({
      ...result.clientOptions,
      host: '127.0.0.1',
      port: server.port,
      maxVersion: 'TLSv1.2',
    })
    expect(modern.protocol).toBe('TLSv1.3')
    expect(legacy.protocol).toBe('TLSv1.2')
    expect(legacy.authorized).toBe(true)
  })

  it('is refused for a host it does not name, because the client checks the server identity', async () => {
    const narrow = await selfSigned(['localhost'])
    const server = await harness.listen(narrow.serverOptions)
    await expect(
      harness.connect({ ...narrow.clientOptions, host: '127.0.0.1', port: server.port }),
    ).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' })
  })

  it('is refused by a client that trusts a different self-signed certificate', async () => {
    const other = await selfSigned(['127.0.0.1', 'localhost', '::1'])
    const server = await harness.listen(result.serverOptions)
    await expect(
      harness.connect({ ...other.clientOptions, host: '127.0.0.1', port: server.port }),
    ).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
  })

  it('works the same with an RSA 2048 key', async () => {
    const rsa = await selfSigned(['127.0.0.1'], { algorithm: 'rsa-2048' })
    const server = await harness.listen(rsa.serverOptions)
    const exchange = await harness.connect({ ...rsa.clientOptions, host: '127.0.0.1', port: server.port })
    expect(exchange).toMatchObject({ authorized: true, protocol: 'TLSv1.3' })
  })
})

describe('certificates issued by a CA', () => {
  let ca: CertificateAuthority
  let otherCa: CertificateAuthority
  let serverMaterial: TlsMaterial
  let clientMaterial: TlsMaterial
  beforeAll(async () => {
    ;[ca, otherCa] = await Promise.all([createCertificateAuthority(), createCertificateAuthority()])
    ;[serverMaterial, clientMaterial] = await Promise.all([
      issueCertificate(ca, { hosts: ['127.0.0.1', '::1', 'localhost'], usage: 'server' }),
      issueCertificate(ca, { usage: 'client' }),
    ])
  })

  it('lets a client that trusts the CA verify the server', async () => {
    const server = await harness.listen(serverTlsOptions(serverMaterial))
    const exchange = await harness.connect({
      ...clientTlsOptions(ca.cert),
      host: '127.0.0.1',
      port: server.port,
    })
    expect(exchange).toMatchObject({ authorized: true, protocol: 'TLSv1.3' })
  })

  it('is refused by a client that trusts another CA', async () => {
    const server = await harness.listen(serverTlsOptions(serverMaterial))
    await expect(
      harness.connect({ ...clientTlsOptions(otherCa.cert), host: '127.0.0.1', port: server.port }),
    ).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })
  })

  describe('with mutual TLS', () => {
    it('accepts a client certificate issued by the same CA', async () => {
      const server = await harness.listen(serverTlsOptions(serverMaterial, { requestClientCert: true }))
      const exchange = await harness.connect({
        ...clientTlsOptions(ca.cert, clientMaterial),
        host: '127.0.0.1',
        port: server.port,
      })
      expect(exchange).toMatchObject({
        authorized: true,
        protocol: 'TLSv1.3',
        greeting: 'hello authorized\n',
      })
      expect(server.accepted).toEqual([true])
    })

    // In TLS 1.3 the client finishes its handshake before the server judges the client certificate, so the
    // client sees the refusal only as a connection closed without a greeting; the server's verdict is the check.
    it('refuses a client without a certificate', async () => {
      const server = await harness.listen(serverTlsOptions(serverMaterial, { requestClientCert: true }))
      const refused = server.nextRefusal()
      await expect(
        harness.connect({ ...clientTlsOptions(ca.cert), host: '127.0.0.1', port: server.port }),
      ).rejects.toThrow()
      expect(await refused).toMatchObject({ code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' })
      expect(server.accepted).toEqual([])
    })

    it('refuses a client certificate issued by another CA', async () => {
      const stranger = await issueCertificate(otherCa, { usage: 'client' })
      const server = await harness.listen(serverTlsOptions(serverMaterial, { requestClientCert: true }))
      const refused = server.nextRefusal()
      await expect(
        harness.connect({ ...clientTlsOptions(ca.cert, stranger), host: '127.0.0.1', port: server.port }),
      ).rejects.toThrow()
      expect(await refused).toMatchObject({ authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' })
      expect(server.accepted).toEqual([])
    })

    it('refuses a server certificate presented as a client certificate (extendedKeyUsage is serverAuth)', async () => {
      const server = await harness.listen(serverTlsOptions(serverMaterial, { requestClientCert: true }))
      const refused = server.nextRefusal()
      await expect(
        harness.connect({
          ...clientTlsOptions(ca.cert, serverMaterial),
          host: '127.0.0.1',
          port: server.port,
        }),
      ).rejects.toThrow()
      expect(await refused).toMatchObject({ authorizationError: 'INVALID_PURPOSE' })
      expect(server.accepted).toEqual([])
    })
  })
})

describe('certificate set files', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'srpc-tlsutil-'))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  it('writes a set that loads back unchanged, with private keys readable only by the owner', async () => {
    const ca = await createCertificateAuthority()
    const set = {
      ca: ca.cert,
      server: await issueCertificate(ca, { hosts: ['127.0.0.1'], usage: 'server' }),
      client: await issueCertificate(ca, { usage: 'client' }),
    }
    const folder = join(dir, 'certs')
    await writeCertificateSet(folder, set)

    expect(await loadCertificateSet(folder)).toEqual(set)
    expect((await stat(folder)).mode & 0o777).toBe(0o700)
    expect((await stat(join(folder, CERTIFICATE_SET_FILES.serverKey))).mode & 0o777).toBe(0o600)
    expect((await stat(join(folder, CERTIFICATE_SET_FILES.clientKey))).mode & 0o777).toBe(0o600)
    expect((await stat(join(folder, CERTIFICATE_SET_FILES.ca))).mode & 0o777).toBe(0o644)
  })

  it('gives a server and a client that load the set separately a verified mutual TLS connection', async () => {
    const folder = join(dir, 'certs')
    await ensureCertificateSet(folder, { hosts: ['127.0.0.1', 'localhost'] })
    // As two processes would: each side loads the folder on its own.
    const forServer = await loadCertificateSet(folder)
    const forClient = await loadCertificateSet(folder)

    const server = await harness.listen(serverTlsOptions(forServer.server, { requestClientCert: true }))
    const exchange = await harness.connect({
      ...clientTlsOptions(forClient.ca, forClient.client),
      host: '127.0.0.1',
      port: server.port,
    })
    expect(exchange).toMatchObject({ authorized: true, protocol: 'TLSv1.3', greeting: 'hello authorized\n' })
  })

  it('creates one set when several callers race to create it, and reuses it afterwards', async () => {
    const folder = join(dir, 'shared')
    const sets = await Promise.all(
      Array.from({ length: 4 }, () => ensureCertificateSet(folder, { hosts: ['127.0.0.1'] })),
    )
    const loaded = await loadCertificateSet(folder)
    for (const set of sets) expect(set).toEqual(loaded)
    expect(await ensureCertificateSet(folder, { hosts: ['127.0.0.1'] })).toEqual(loaded)
    expect((await stat(folder)).mode & 0o777).toBe(0o700)
    expect((await stat(join(folder, CERTIFICATE_SET_FILES.serverKey))).mode & 0o777).toBe(0o600)
  })
})
