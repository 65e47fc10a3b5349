import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createCertificateAuthority, issueCertificate } from './certificate-authority'
import {
  CERTIFICATE_SET_FILES,
  type CertificateSet,
  loadCertificateSet,
  writeCertificateSet,
} from './certificate-set'
import { ensureCertificateSet } from './ensure-certificate-set'

// Permission checks do not apply to root, so the unreadable-file case can only be shown as another user.
const runsAsRoot = process.getuid?.() === 0

describe('certificate set files', () => {
  let set: CertificateSet
  let dir: string
  beforeAll(async () => {
    const ca = await createCertificateAuthority()
    set = {
      ca: ca.cert,
      server: await issueCertificate(ca, { hosts: ['localhost'], usage: 'server' }),
      client: await issueCertificate(ca, { usage: 'client' }),
    }
  })
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'srpc-tlsutil-'))
  })
  afterEach(() => rm(dir, { recursive: true, force: true }))

  it('writes the five files under their documented names and leaves no temporary files', async () => {
    await writeCertificateSet(dir, set)
    expect((await readdir(dir)).sort()).toEqual([
      'ca.pem',
      'client-key.pem',
      'client.pem',
      'server-key.pem',
      'server.pem',
    ])
    expect(await readFile(join(dir, 'server-key.pem'), 'utf8')).toBe(set.server.key)
    expect(await readFile(join(dir, 'ca.pem'), 'utf8')).toBe(set.ca)
  })

  it('overwrites an existing set and keeps key files at mode 0600', async () => {
    await writeFile(join(dir, CERTIFICATE_SET_FILES.serverKey), 'old', { mode: 0o644 })
    await writeCertificateSet(dir, set)
    expect((await stat(join(dir, CERTIFICATE_SET_FILES.serverKey))).mode & 0o777).toBe(0o600)
    expect(await loadCertificateSet(dir)).toEqual(set)
  })

  it('refuses to write a set that does not hold together', async () => {
    await expect(
      writeCertificateSet(dir, { ...set, server: { key: set.client.key, cert: set.server.cert } }),
    ).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringMatching(/^set\.server\.key does not belong/),
    })
    await expect(writeCertificateSet(dir, { ...set, ca: 'x' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'set.ca is not a readable PEM certificate',
    })
  })

  it('fails with FILE_ERROR naming a folder that does not exist', async () => {
    const missing = join(dir, 'nowhere')
    await expect(loadCertificateSet(missing)).rejects.toMatchObject({
      name: 'TlsUtilError',
      code: 'FILE_ERROR',
      path: missing,
      message: `certificate folder ${missing} does not exist`,
    })
  })

  it('fails with FILE_ERROR when the path is a file, not a folder', async () => {
    const file = join(dir, 'file')
    await writeFile(file, '')
    await expect(loadCertificateSet(file)).rejects.toMatchObject({
      code: 'FILE_ERROR',
      message: `${file} is not a folder`,
    })
  })

  it('fails with FILE_ERROR naming the first file of an empty folder', async () => {
    await expect(loadCertificateSet(dir)).rejects.toMatchObject({
      code: 'FILE_ERROR',
      path: join(dir, 'ca.pem'),
    })
  })

  it('fails with FILE_ERROR naming the missing file of a partial set', async () => {
    await writeCertificateSet(dir, set)
    await rm(join(dir, CERTIFICATE_SET_FILES.clientKey))
    await expect(loadCertificateSet(dir)).rejects.toMatchObject({
      code: 'FILE_ERROR',
      path: join(dir, 'client-key.pem'),
      message: expect.stringMatching(/incomplete certificate set .*client-key\.pem does not exist/),
    })
  })

  it('fails with FILE_ERROR naming a file that is not what it should be', async () => {
    await writeCertificateSet(dir, set)
    await writeFile(join(dir, CERTIFICATE_SET_FILES.serverCert), 'garbage')
    await expect(loadCertificateSet(dir)).rejects.toMatchObject({
      code: 'FILE_ERROR',
      path: join(dir, 'server.pem'),
      message: `${join(dir, 'server.pem')} is not a readable PEM certificate`,
    })
  })

  it('fails with FILE_ERROR when a certificate comes from another CA', async () => {
    const otherCa = await createCertificateAuthority()
    const stranger = await issueCertificate(otherCa, { usage: 'client' })
    await writeCertificateSet(dir, set)
    await writeFile(join(dir, CERTIFICATE_SET_FILES.clientCert), stranger.cert)
    await writeFile(join(dir, CERTIFICATE_SET_FILES.clientKey), stranger.key)
    await expect(loadCertificateSet(dir)).rejects.toMatchObject({
      code: 'FILE_ERROR',
      path: join(dir, 'client.pem'),
      message: expect.stringMatching(/was not issued by the CA in this set/),
    })
  })

  it.skipIf(runsAsRoot)('fails with FILE_ERROR naming an unreadable file (skipped as root)', async () => {
    await writeCertificateSet(dir, set)
    const path = join(dir, CERTIFICATE_SET_FILES.serverKey)
    await chmod(path, 0o000)
    await expect(loadCertificateSet(dir)).rejects.toMatchObject({
      code: 'FILE_ERROR',
      path,
      message: `cannot read ${path} (EACCES)`,
    })
  })

  describe('ensureCertificateSet', () => {
    it('creates a set in an existing empty folder and returns the same set on the next call', async () => {
      const created = await ensureCertificateSet(dir, { hosts: ['localhost', '127.0.0.1'] })
      expect(await ensureCertificateSet(dir, { hosts: ['127.0.0.1'] })).toEqual(created)
      expect(await loadCertificateSet(dir)).toEqual(created)
    })

    it('refuses an existing set that does not cover a requested host', async () => {
      await ensureCertificateSet(dir, { hosts: ['localhost'] })
      await expect(ensureCertificateSet(dir, { hosts: ['localhost', '::1'] })).rejects.toMatchObject({
        code: 'FILE_ERROR',
        path: join(dir, 'server.pem'),
        message: expect.stringMatching(/does not cover host "::1"/),
      })
    })

    it('does not replace a partial set', async () => {
      await writeCertificateSet(dir, set)
      await rm(join(dir, CERTIFICATE_SET_FILES.serverCert))
      await expect(ensureCertificateSet(dir, { hosts: ['localhost'] })).rejects.toMatchObject({
        code: 'FILE_ERROR',
        path: join(dir, 'server.pem'),
      })
      await expect(stat(join(dir, CERTIFICATE_SET_FILES.ca))).resolves.toBeDefined()
    })

    it('does not write into a folder that holds other files, and cleans up after itself', async () => {
      const folder = join(dir, 'busy')
      await mkdir(folder)
      await writeFile(join(folder, 'notes.txt'), 'mine')
      await expect(ensureCertificateSet(folder, { hosts: ['localhost'] })).rejects.toMatchObject({
        code: 'FILE_ERROR',
        message: expect.stringMatching(/already holds other files/),
      })
      expect(await readdir(dir)).toEqual(['busy'])
      expect(await readdir(folder)).toEqual(['notes.txt'])
    })

    it('validates hosts before touching the disk', async () => {
      const folder = join(dir, 'never')
      await expect(ensureCertificateSet(folder, { hosts: [] })).rejects.toMatchObject({ code: 'EMPTY_HOSTS' })
      await expect(stat(folder)).rejects.toMatchObject({ code: 'ENOENT' })
    })
  })
})
