import { X509Certificate } from 'node:crypto'
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { createCertificateAuthority, issueCertificate } from './certificate-authority'
import {
  CERTIFICATE_SET_FILES,
  type CertificateSet,
  errorCode,
  fileError,
  readCertificateSet,
  writeCertificateSet,
} from './certificate-set'
import { type HostName, parseHosts } from './hosts'
import {
  DEFAULT_LEAF_VALIDITY_DAYS,
  type KeyAlgorithm,
  resolveAlgorithm,
  resolveOptionsObject,
  resolveValidityDays,
} from './options'

export interface EnsureCertificateSetOptions {
  /** Hosts the server certificate must name; an existing set must already cover all of them. */
  hosts: string[]
  /** Key type for a new set; default `'ecdsa-p256'`. */
  algorithm?: KeyAlgorithm
  /** Days the new server and client certificates stay valid; default 365. */
  validityDays?: number
}

// rename(2) onto a folder that is already populated fails with one of these: another process got there first.
const FOLDER_TAKEN = new Set(['EEXIST', 'ENOTEMPTY', 'EPERM'])

/**
 * Loads the certificate set in `dir`, or creates one — a new CA, a server certificate for `hosts` and a
 * client certificate — and writes it there. Safe when several processes start at once: each builds its set
 * in a private temporary folder and renames the whole folder into place, so exactly one set wins and every
 * caller returns that one. An existing set that is broken, partial or missing a host is an error, never
 * silently replaced, because other processes may already trust it.
 */
export async function ensureCertificateSet(
  dir: string,
  options: EnsureCertificateSetOptions,
): Promise<CertificateSet> {
  const opts = resolveOptionsObject(options, 'ensureCertificateSet options')
  const hosts = parseHosts(opts.hosts)
  const algorithm = resolveAlgorithm(opts.algorithm)
  const validityDays = resolveValidityDays(opts.validityDays, DEFAULT_LEAF_VALIDITY_DAYS)

  const existing = await readCertificateSet(dir)
  if (existing.state === 'complete') return requireHosts(existing.set, hosts, dir)

  const target = resolve(dir)
  const parent = dirname(target)
  let staging: string
  try {
    await mkdir(parent, { recursive: true })
    // mkdtemp creates the folder with mode 0700, which the set keeps after the rename.
    staging = await mkdtemp(join(parent, `.${basename(target)}.tmp-`))
  } catch (cause) {
    throw fileError(
      `cannot create a temporary folder next to ${target} (${errorCode(cause) ?? 'error'})`,
      parent,
      cause,
    )
  }

  try {
    const set = await createCertificateSet(
      hosts.map((h) => h.value),
      algorithm,
      validityDays,
    )
    await writeCertificateSet(staging, set)
    try {
      // Atomic: replaces a missing or empty folder, fails if another process already put a set there.
      await rename(staging, target)
      return set
    } catch (cause) {
      if (!FOLDER_TAKEN.has(errorCode(cause) ?? '')) {
        throw fileError(
          `cannot move the new certificate set into ${target} (${errorCode(cause)})`,
          target,
          cause,
        )
      }
    }
  } finally {
    await rm(staging, { recursive: true, force: true })
  }

  const winner = await readCertificateSet(dir)
  if (winner.state === 'complete') return requireHosts(winner.set, hosts, dir)
  throw fileError(
    `cannot create a certificate set in ${target}: the folder already holds other files; use an empty or new folder`,
    target,
  )
}

async function createCertificateSet(
  hosts: string[],
  algorithm: KeyAlgorithm,
  validityDays: number,
): Promise<CertificateSet> {
  const ca = await createCertificateAuthority({ algorithm })
  const [server, client] = await Promise.all([
    issueCertificate(ca, { hosts, usage: 'server', algorithm, validityDays }),
    issueCertificate(ca, { usage: 'client', algorithm, validityDays }),
  ])
  // The CA key is dropped here on purpose: a copied or leaked folder cannot be used to mint new certificates.
  return { ca: ca.cert, server, client }
}

function requireHosts(set: CertificateSet, hosts: HostName[], dir: string): CertificateSet {
  const cert = new X509Certificate(set.server.cert)
  const dnsNames = new Set(
    (cert.subjectAltName ?? '')
      .split(', ')
      .filter((entry) => entry.startsWith('DNS:'))
      .map((entry) => entry.slice(4).toLowerCase()),
  )
  for (const host of hosts) {
    const covered = host.type === 'ip' ? cert.checkIP(host.value) !== undefined : dnsNames.has(host.value)
    if (!covered) {
      const path = join(dir, CERTIFICATE_SET_FILES.serverCert)
      throw fileError(
        `${path} does not cover host ${JSON.stringify(host.value)} (it has: ${cert.subjectAltName ?? 'no subjectAltName'}); delete ${dir} to create a new set`,
        path,
      )
    }
  }
  return set
}
