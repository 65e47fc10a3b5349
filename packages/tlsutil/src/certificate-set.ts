import { randomBytes } from 'node:crypto'
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  type CertificateSetPart,
  type CertificateSetParts,
  findCertificateSetProblem,
} from './certificate-set-check'
import { TlsUtilError } from './errors'
import type { KeyCertPair, TlsMaterial } from './tls-options'

/** A CA and the server and client certificates it issued: everything two processes need for mutual TLS. */
export interface CertificateSet {
  /** The CA certificate that both sides trust. Its private key is not part of a set. */
  ca: string
  server: TlsMaterial
  client: TlsMaterial
}

/** What `writeCertificateSet` needs; a `CertificateSet` fits. */
export interface CertificateSetInput {
  ca: string
  server: KeyCertPair
  client: KeyCertPair
}

/** File names inside a certificate set folder. */
export const CERTIFICATE_SET_FILES: Readonly<Record<CertificateSetPart, string>> = Object.freeze({
  ca: 'ca.pem',
  serverCert: 'server.pem',
  serverKey: 'server-key.pem',
  clientCert: 'client.pem',
  clientKey: 'client-key.pem',
})

export const DIRECTORY_MODE = 0o700
export const PRIVATE_KEY_FILE_MODE = 0o600
export const CERTIFICATE_FILE_MODE = 0o644

const PARTS = Object.keys(CERTIFICATE_SET_FILES) as CertificateSetPart[]
const KEY_PARTS: ReadonlySet<CertificateSetPart> = new Set(['serverKey', 'clientKey'])

/**
 * Writes a set to `dir` (created with mode 0700 if missing): ca.pem, server.pem, server-key.pem,
 * client.pem, client-key.pem. Key files get mode 0600. Each file is written to a temporary name and
 * renamed into place, so a reader never sees half a file. The set is checked first; a set that does not
 * hold together is refused with `INVALID_ARGUMENT` rather than saved.
 */
export async function writeCertificateSet(dir: string, set: CertificateSetInput): Promise<void> {
  requireDirectoryArgument(dir)
  const parts = toParts(set)
  const problem = findCertificateSetProblem(parts)
  if (problem !== undefined) {
    throw new TlsUtilError('INVALID_ARGUMENT', `set.${describePart(problem.part)} ${problem.message}`, {
      cause: problem.cause,
    })
  }
  try {
    await mkdir(dir, { recursive: true, mode: DIRECTORY_MODE })
  } catch (cause) {
    throw fileError(`cannot create certificate folder ${dir}`, dir, cause)
  }
  for (const part of PARTS) {
    const mode = KEY_PARTS.has(part) ? PRIVATE_KEY_FILE_MODE : CERTIFICATE_FILE_MODE
    await writeFileAtomically(join(dir, CERTIFICATE_SET_FILES[part]), parts[part], mode)
  }
}

/**
 * Loads the set written by `writeCertificateSet`. A missing or unreadable folder or file, or files that do
 * not form a valid set, fail with `FILE_ERROR` whose message and `path` name the culprit.
 */
export async function loadCertificateSet(dir: string): Promise<CertificateSet> {
  const result = await readCertificateSet(dir)
  if (result.state === 'complete') return result.set
  if (result.state === 'no-folder') {
    throw fileError(`certificate folder ${dir} does not exist`, dir)
  }
  const first = join(dir, CERTIFICATE_SET_FILES.ca)
  throw fileError(`no certificate set in ${dir}: ${first} does not exist`, first)
}

export type ReadResult =
  | { state: 'complete'; set: CertificateSet }
  | { state: 'no-folder' }
  | { state: 'empty' }

/**
 * Reads and checks a set, telling "nothing there yet" (no folder, or none of the five files) apart from a
 * set that is there but broken, which throws: a partial set is never silently replaced.
 */
export async function readCertificateSet(dir: string): Promise<ReadResult> {
  requireDirectoryArgument(dir)
  try {
    const info = await stat(dir)
    if (!info.isDirectory()) throw fileError(`${dir} is not a folder`, dir)
  } catch (cause) {
    if (cause instanceof TlsUtilError) throw cause
    if (errorCode(cause) === 'ENOENT') return { state: 'no-folder' }
    throw fileError(`cannot read certificate folder ${dir} (${errorCode(cause) ?? 'error'})`, dir, cause)
  }

  const contents: Partial<CertificateSetParts> = {}
  const missing: string[] = []
  for (const part of PARTS) {
    const path = join(dir, CERTIFICATE_SET_FILES[part])
    try {
      contents[part] = await readFile(path, 'utf8')
    } catch (cause) {
      if (errorCode(cause) !== 'ENOENT') {
        throw fileError(`cannot read ${path} (${errorCode(cause) ?? 'error'})`, path, cause)
      }
      missing.push(path)
    }
  }
  if (missing.length === PARTS.length) return { state: 'empty' }
  if (missing.length > 0) {
    throw fileError(
      `incomplete certificate set in ${dir}: ${missing.join(', ')} ${missing.length === 1 ? 'does' : 'do'} not exist`,
      missing[0],
    )
  }

  const parts = contents as CertificateSetParts
  const problem = findCertificateSetProblem(parts)
  if (problem !== undefined) {
    const path = join(dir, CERTIFICATE_SET_FILES[problem.part])
    throw fileError(`${path} ${problem.message}`, path, problem.cause)
  }
  return {
    state: 'complete',
    set: {
      ca: parts.ca,
      server: { key: parts.serverKey, cert: parts.serverCert, ca: parts.ca },
      client: { key: parts.clientKey, cert: parts.clientCert, ca: parts.ca },
    },
  }
}

async function writeFileAtomically(path: string, data: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`
  try {
    // 'wx' never follows or reuses an existing file; the mode applies from the moment the file exists.
    await writeFile(temporary, data, { mode, flag: 'wx' })
    // The process umask may have cleared bits of `mode`; the documented modes are exact.
    await chmod(temporary, mode)
    await rename(temporary, path)
  } catch (cause) {
    await rm(temporary, { force: true })
    throw fileError(`cannot write ${path} (${errorCode(cause) ?? 'error'})`, path, cause)
  }
}

function toParts(set: CertificateSetInput): CertificateSetParts {
  if (
    set === null ||
    typeof set !== 'object' ||
    typeof set.server !== 'object' ||
    typeof set.client !== 'object'
  ) {
    throw new TlsUtilError(
      'INVALID_ARGUMENT',
      'set must be an object with ca, server { key, cert } and client { key, cert }',
    )
  }
  const parts = {
    ca: set.ca,
    serverCert: set.server?.cert,
    serverKey: set.server?.key,
    clientCert: set.client?.cert,
    clientKey: set.client?.key,
  }
  for (const part of PARTS) {
    if (typeof parts[part] !== 'string') {
      throw new TlsUtilError('INVALID_ARGUMENT', `set.${describePart(part)} must be a PEM string`)
    }
  }
  return parts as CertificateSetParts
}

function describePart(part: CertificateSetPart): string {
  if (part === 'ca') return 'ca'
  const side = part.startsWith('server') ? 'server' : 'client'
  return `${side}.${part.endsWith('Key') ? 'key' : 'cert'}`
}

function requireDirectoryArgument(dir: unknown): asserts dir is string {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new TlsUtilError(
      'INVALID_ARGUMENT',
      `dir must be a non-empty folder path, got ${JSON.stringify(dir)}`,
    )
  }
}

export function fileError(message: string, path: string, cause?: unknown): TlsUtilError {
  return new TlsUtilError('FILE_ERROR', message, { path, cause })
}

export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code
  return typeof code === 'string' ? code : undefined
}
