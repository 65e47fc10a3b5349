import { readFile } from 'node:fs/promises'
import type { ConnectionOptions } from 'node:tls'
import { Pool, type PoolOptions } from '@srpc/client'
import { encodeMetadata, type Metadata, RpcError } from '@srpc/protocol'
import { type Command, Option } from 'commander'
import { MAX_TIMEOUT, parseDuration } from './duration'
import { CliError, describeError, UsageError } from './errors'

/** Where the server is when ADDR is not given. */
export const ENV_ADDRESS = 'SRPC_ADDRESS'
/** A certificate set (ca.pem, client.pem, client-key.pem) when --cert-dir is not given. */
export const ENV_CERT_DIR = 'SRPC_CERT_DIR'
export const ENV_CA = 'SRPC_CA'
export const ENV_CERT = 'SRPC_CERT'
export const ENV_KEY = 'SRPC_KEY'

/** Bound on connecting (TCP + TLS handshake), unless --connect-timeout says otherwise. */
export const DEFAULT_CONNECT_TIMEOUT = '5s'

/** What the connection options of every network command parse to. */
export interface ConnectionFlags {
  ca?: string
  cert?: string
  key?: string
  certDir?: string
  insecure?: boolean
  servername?: string
  connectTimeout?: string
  header?: string[]
}

/** Adds the TLS, metadata and connect options that every command talking to a server shares. */
export function addConnectionOptions(command: Command, { metadata = true } = {}): Command {
  command
    .addOption(
      new Option(
        '--cert-dir <dir>',
        'certificate set from @srpc/tlsutil (ca.pem, client.pem, client-key.pem)',
      ).env(ENV_CERT_DIR),
    )
    .addOption(
      new Option('--ca <file>', 'CA certificate (PEM) that signed the server certificate').env(ENV_CA),
    )
    .addOption(new Option('--cert <file>', 'client certificate (PEM) for mutual TLS').env(ENV_CERT))
    .addOption(new Option('--key <file>', 'private key (PEM) of --cert').env(ENV_KEY))
    .option('--servername <name>', 'host name the server certificate must name (default: the host of ADDR)')
    .option('--insecure', 'DANGEROUS: do not verify the server certificate at all')
    .option(
      '--connect-timeout <duration>',
      'bound on connecting and the TLS handshake',
      DEFAULT_CONNECT_TIMEOUT,
    )
  if (metadata) {
    command.option(
      '-H, --header <key=value>',
      'metadata sent with the call (repeatable)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
  }
  return command
}

/**
 * ADDR and ROUTE of a command: ADDR may be left out when SRPC_ADDRESS is set (a route always
 * starts with `/`, an address never does).
 */
export function addressAndRoute(
  first: string | undefined,
  second: string | undefined,
  env: NodeJS.ProcessEnv,
  needsRoute: boolean,
): { address: string; route: string } {
  let address = first
  let route = second
  if (needsRoute && route === undefined && address?.startsWith('/')) {
    route = address
    address = undefined
  }
  address ??= env[ENV_ADDRESS] || undefined
  if (address === undefined) throw new UsageError(`missing ADDR (host:port), and ${ENV_ADDRESS} is not set`)
  if (address.startsWith('/'))
    throw new UsageError(`ADDR must be host:port, got ${JSON.stringify(address)} (a route?)`)
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):\d{1,5}$/.test(address))
    throw new UsageError(`ADDR must be host:port (or [ipv6]:port), got ${JSON.stringify(address)}`)
  if (needsRoute) {
    if (route === undefined) throw new UsageError('missing ROUTE (such as /echo)')
    if (!route.startsWith('/')) throw new UsageError(`ROUTE must start with /, got ${JSON.stringify(route)}`)
  }
  return { address, route: route ?? '' }
}

/** `-H key=value` pairs as metadata; keys are lowercased (as grpcurl does with headers) and checked now. */
export function parseMetadata(headers: readonly string[] | undefined): Metadata | undefined {
  if (headers === undefined || headers.length === 0) return undefined
  const metadata: Metadata = {}
  for (const header of headers) {
    const at = header.indexOf('=')
    if (at <= 0) throw new UsageError(`-H must be key=value, got ${JSON.stringify(header)}`)
    metadata[header.slice(0, at).trim().toLowerCase()] = header.slice(at + 1)
  }
  try {
    encodeMetadata(metadata)
  } catch (err) {
    throw new UsageError(`-H: ${RpcError.is(err) ? err.message : describeError(err)}`)
  }
  return metadata
}

async function readPem(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    throw new CliError(`cannot read the ${what} ${path}: ${describeError(err)}`)
  }
}

/**
 * TLS options from the flags. Verification is always on unless --insecure: with neither --ca nor
 * --cert-dir, Node's bundled public CAs verify the server. Flags given on the command line win
 * over the environment; --ca, --cert and --key replace the matching part of a --cert-dir set.
 */
export async function tlsOptions(
  flags: ConnectionFlags,
  command: Command,
  warn: (line: string) => void,
): Promise<{ tls: ConnectionOptions; insecure: boolean }> {
  const fromCli = (name: string) => command.getOptionValueSource(name) === 'cli'
  // An empty variable (SRPC_CERT_DIR=) means unset, as shells treat it.
  const given = (value: string | undefined) => (value === '' ? undefined : value)
  let caFile = given(flags.ca)
  let certFile = given(flags.cert)
  let keyFile = given(flags.key)
  const certDir = given(flags.certDir)
  // A --cert-dir on the command line beats stray SRPC_CA/SRPC_CERT/SRPC_KEY in the environment.
  if (certDir !== undefined && fromCli('certDir')) {
    if (!fromCli('ca')) caFile = undefined
    if (!fromCli('cert')) certFile = undefined
    if (!fromCli('key')) keyFile = undefined
  }
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new UsageError('--cert and --key go together (the client certificate and its private key)')

  const tls: ConnectionOptions = {}
  if (certDir !== undefined) {
    try {
      // Loaded only when needed: its X.509 library costs a fifth of a second at startup.
      const { loadCertificateSet } = await import('@srpc/tlsutil')
      const set = await loadCertificateSet(certDir)
      tls.ca = set.ca
      tls.cert = set.client.cert
      tls.key = set.client.key
    } catch (err) {
      throw new CliError(`--cert-dir: ${describeError(err)}`)
    }
  }
  if (caFile !== undefined) tls.ca = await readPem(caFile, 'CA certificate')
  if (certFile !== undefined && keyFile !== undefined) {
    tls.cert = await readPem(certFile, 'client certificate')
    tls.key = await readPem(keyFile, 'client key')
  }
  if (flags.servername !== undefined) tls.servername = flags.servername
  const insecure = flags.insecure === true
  if (insecure) {
    warn('WARNING: --insecure: the server certificate is NOT verified. Anyone between you and the')
    warn('server can read and change this traffic. Use --ca or --cert-dir instead.')
    delete tls.ca
    tls.rejectUnauthorized = false
  } else {
    tls.rejectUnauthorized = true
  }
  return { tls, insecure }
}

/** A pool for one command: `size` connections, no background probes, bounded connecting. */
export async function openPool(
  address: string,
  flags: ConnectionFlags,
  command: Command,
  warn: (line: string) => void,
  extra: Partial<PoolOptions> = {},
): Promise<Pool> {
  const connectTimeout = parseDuration(
    '--connect-timeout',
    flags.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
    MAX_TIMEOUT,
  )
  const { tls, insecure } = await tlsOptions(flags, command, warn)
  const pool = new Pool({
    address,
    tls,
    dangerouslyDisableServerVerification: insecure,
    connectTimeout,
    healthCheck: false,
    size: 1,
    ...extra,
  })
  // Background failures are reported by the calls that need the connection.
  pool.on('error', () => {})
  return pool
}
