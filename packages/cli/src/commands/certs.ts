import { X509Certificate } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Command, Option } from 'commander'
import { act, examples } from '../command-kit'
import { parseCount } from '../duration'
import { CliError, describeError, UsageError } from '../errors'
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes'
import { type Io, write } from '../io'
import { table } from '../schema-summary'

const DAY_MS = 86_400_000

/** Loaded when a certs command runs: its X.509 library costs a fifth of a second at startup. */
const tlsutil = () => import('@srpc/tlsutil')

export function certsCommand(io: Io): Command {
  const certs = new Command('certs').description(
    'create and inspect certificate sets (a CA, a server and a client certificate) from @srpc/tlsutil',
  )
  const create = new Command('create')
    .description('create a new CA and server and client certificates in DIR (refuses a DIR that holds a set)')
    .argument('<DIR>', 'folder to write ca.pem, server.pem, server-key.pem, client.pem, client-key.pem')
    .requiredOption('--hosts <hosts>', 'comma-separated names and IPs the server certificate covers')
    .option('--days <n>', 'days the server and client certificates stay valid', '365')
    .addOption(
      new Option('--algorithm <algorithm>', 'key type')
        .choices(['ecdsa-p256', 'rsa-2048'])
        .default('ecdsa-p256'),
    )
  examples(create, [
    'srpc certs create .srpc-certs --hosts 127.0.0.1,localhost,::1',
    'srpc certs create /etc/myapp/tls --hosts api.internal,10.0.0.5 --days 90',
  ])
  create.action(
    act(
      io,
      async (dir: string, flags: { hosts: string; days: string; algorithm: 'ecdsa-p256' | 'rsa-2048' }) => {
        const hosts = flags.hosts
          .split(',')
          .map((host) => host.trim())
          .filter((host) => host.length > 0)
        if (hosts.length === 0) throw new UsageError('--hosts needs at least one host name or IP address')
        const validityDays = parseCount('--days', flags.days, 1, 36_500)
        const { CERTIFICATE_SET_FILES, ensureCertificateSet, TlsUtilError } = await tlsutil()
        if (Object.values(CERTIFICATE_SET_FILES).some((file) => existsSync(join(dir, file)))) {
          throw new CliError(
            `${dir} already holds a certificate set (or part of one); inspect it with \`srpc certs show ${dir}\`, or pick a new folder`,
          )
        }
        try {
          await ensureCertificateSet(dir, { hosts, validityDays, algorithm: flags.algorithm })
        } catch (err) {
          if (err instanceof TlsUtilError && err.code !== 'FILE_ERROR') throw new UsageError(err.message)
          throw new CliError(describeError(err))
        }
        await write(io.stdout, `created a certificate set in ${dir}\n\n`)
        return showSet(io, dir, false)
      },
    ),
  )
  const show = new Command('show')
    .description(
      'show the certificates of a set: subject, hosts, issuer and expiry; checks that the set holds together',
    )
    .argument('<DIR>', 'folder of a certificate set')
    .option('--json', 'print the details as JSON')
  examples(show, [
    'srpc certs show .srpc-certs',
    "srpc certs show .srpc-certs --json | jq '.certificates[].validTo'",
  ])
  show.action(
    act(io, async (dir: string, flags: { json?: boolean }) => showSet(io, dir, flags.json === true)),
  )
  examples(certs, [
    'srpc certs create .srpc-certs --hosts 127.0.0.1,localhost',
    'srpc certs show .srpc-certs',
  ])
  return certs.addCommand(create).addCommand(show)
}

interface CertificateDetails {
  role: 'ca' | 'server' | 'client'
  file: string
  subject: string
  issuer: string
  hosts: string[]
  validFrom: string
  validTo: string
  daysLeft: number
  fingerprint256: string
}

/**
 * Prints each certificate of the set, then whether the set holds together (keys match, the CA
 * issued both leaves, nothing expired): exit 0 if it does, 1 with the problem if not.
 */
async function showSet(io: Io, dir: string, json: boolean): Promise<number> {
  const { CERTIFICATE_SET_FILES, loadCertificateSet } = await tlsutil()
  const certificates: CertificateDetails[] = []
  for (const [role, part] of [
    ['ca', 'ca'],
    ['server', 'serverCert'],
    ['client', 'clientCert'],
  ] as const) {
    const file = join(dir, CERTIFICATE_SET_FILES[part])
    let cert: X509Certificate
    try {
      cert = new X509Certificate(await readFile(file))
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${describeError(err)}`)
    }
    const validTo = new Date(cert.validTo)
    certificates.push({
      role,
      file,
      subject: cert.subject.replaceAll('\n', ', '),
      issuer: cert.issuer.replaceAll('\n', ', '),
      hosts: hostsOf(cert),
      validFrom: new Date(cert.validFrom).toISOString(),
      validTo: validTo.toISOString(),
      daysLeft: Math.floor((validTo.getTime() - Date.now()) / DAY_MS),
      fingerprint256: cert.fingerprint256,
    })
  }
  let problem: string | undefined
  try {
    await loadCertificateSet(dir)
  } catch (err) {
    problem = describeError(err)
  }
  if (json) {
    await write(
      io.stdout,
      `${JSON.stringify({ dir, valid: problem === undefined, problem, certificates }, null, 2)}\n`,
    )
  } else {
    const rows = [['ROLE', 'SUBJECT', 'HOSTS', 'EXPIRES', 'FILE']]
    for (const c of certificates) {
      const expires =
        c.daysLeft < 0
          ? `${c.validTo.slice(0, 10)} (EXPIRED)`
          : `${c.validTo.slice(0, 10)} (${c.daysLeft} days)`
      rows.push([c.role, c.subject, c.hosts.join(',') || '-', expires, c.file])
    }
    await write(
      io.stdout,
      `${table(rows)}\n${problem === undefined ? 'set ok: keys match, the CA issued both certificates, none expired' : `set BROKEN: ${problem}`}\n`,
    )
  }
  return problem === undefined ? EXIT_OK : EXIT_FAILURE
}

/** DNS names and IP addresses of the subjectAltName. */
function hostsOf(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:') || entry.startsWith('IP Address:'))
    .map((entry) => entry.slice(entry.indexOf(':') + 1))
}
