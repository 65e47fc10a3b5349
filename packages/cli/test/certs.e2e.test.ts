import { X509Certificate } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { killAll, runCli } from './fixture'

let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'srpc-cli-certs-'))
})
afterEach(async () => {
  killAll()
  await rm(dir, { recursive: true, force: true })
})

describe('srpc certs', () => {
  it('create writes a set for the hosts; show lists the certificates and expiry and says the set is ok', async () => {
    const set = join(dir, 'tls')
    const created = await runCli([
      'certs',
      'create',
      set,
      '--hosts',
      '127.0.0.1,api.internal',
      '--days',
      '30',
    ])
    expect(created.stderr).toBe('')
    expect(created.code).toBe(0)
    const server = new X509Certificate(await readFile(join(set, 'server.pem')))
    expect(server.subjectAltName).toContain('DNS:api.internal')
    expect(server.checkIP('127.0.0.1')).toBe('127.0.0.1')
    expect((await stat(join(set, 'client-key.pem'))).mode & 0o777).toBe(0o600)

    const shown = await runCli(['certs', 'show', set])
    expect(shown.code).toBe(0)
    const row = (role: string) => shown.stdout.split('\n').find((line) => line.startsWith(`${role} `))!
    expect(row('server')).toMatch(/127\.0\.0\.1,api\.internal/)
    expect(row('server')).toMatch(/\((29|30) days\)/)
    expect(row('ca')).toBeDefined()
    expect(row('client')).toBeDefined()
    expect(shown.stdout).toContain('set ok:')

    const json = await runCli(['certs', 'show', set, '--json'])
    const details = JSON.parse(json.stdout) as {
      valid: boolean
      certificates: { role: string; hosts: string[]; validTo: string }[]
    }
    expect(details.valid).toBe(true)
    const hosts = details.certificates.find((c) => c.role === 'server')?.hosts ?? []
    expect([...hosts].sort()).toEqual(['127.0.0.1', 'api.internal'])
    expect(new Date(details.certificates[1].validTo).getTime()).toBe(new Date(server.validTo).getTime())
  })

  it('create refuses a folder that already holds a set (exit 1); show reports a broken set (exit 1)', async () => {
    const set = join(dir, 'tls')
    expect((await runCli(['certs', 'create', set, '--hosts', 'localhost'])).code).toBe(0)
    const again = await runCli(['certs', 'create', set, '--hosts', 'localhost'])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('already holds a certificate set')
    // The client key of another set does not belong to this client certificate.
    const other = join(dir, 'other')
    expect((await runCli(['certs', 'create', other, '--hosts', 'localhost'])).code).toBe(0)
    await writeFile(join(set, 'client-key.pem'), await readFile(join(other, 'client-key.pem')))
    const broken = await runCli(['certs', 'show', set])
    expect(broken.code).toBe(1)
    expect(broken.stdout).toContain('set BROKEN:')
    expect(broken.stdout).toContain('client-key.pem does not belong to the client certificate')
  })

  it('bad hosts and missing folders are clear errors', async () => {
    const badHost = await runCli(['certs', 'create', join(dir, 'x'), '--hosts', 'not a host!'])
    expect(badHost.code).toBe(2)
    expect(badHost.stderr).toContain('Usage: srpc certs create')
    const noHosts = await runCli(['certs', 'create', join(dir, 'y')])
    expect(noHosts.code).toBe(2)
    expect(noHosts.stderr).toContain("required option '--hosts <hosts>' not specified")
    const missing = await runCli(['certs', 'show', join(dir, 'none')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain(`cannot read ${join(dir, 'none', 'ca.pem')}`)
  })
})
