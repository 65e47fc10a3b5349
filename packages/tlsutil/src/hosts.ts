import { isIP } from 'node:net'
import { TlsUtilError } from './errors'

/** One subjectAltName entry, already validated and normalised. */
export interface HostName {
  type: 'dns' | 'ip'
  value: string
}

const MAX_DNS_NAME_LENGTH = 253
// RFC 1123: letters, digits and hyphens, 1 to 63 characters, no hyphen at either end.
const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const NUMERIC_LABEL = /^[0-9]+$/

/**
 * Validates a list of hosts for a certificate and returns them as SAN entries, in order, without duplicates.
 * Throws `EMPTY_HOSTS` for an empty list and `INVALID_HOST` naming the first bad entry.
 */
export function parseHosts(hosts: readonly string[] | undefined, what = 'hosts'): HostName[] {
  if (hosts === undefined || hosts === null || (Array.isArray(hosts) && hosts.length === 0)) {
    throw new TlsUtilError('EMPTY_HOSTS', `${what} must list at least one DNS name or IP address`)
  }
  if (!Array.isArray(hosts)) {
    throw new TlsUtilError('INVALID_ARGUMENT', `${what} must be an array of strings, got ${describe(hosts)}`)
  }
  const seen = new Set<string>()
  const names: HostName[] = []
  for (const [index, host] of hosts.entries()) {
    const name = parseHost(host, `${what}[${index}]`)
    const key = `${name.type}:${name.value}`
    if (!seen.has(key)) {
      seen.add(key)
      names.push(name)
    }
  }
  return names
}

/** Validates one host: an IPv4/IPv6 address, or a DNS name that may start with a `*.` wildcard. */
export function parseHost(host: string, what = 'host'): HostName {
  if (typeof host !== 'string') {
    throw new TlsUtilError('INVALID_HOST', `${what} must be a string, got ${describe(host)}`)
  }
  if (host.length === 0) {
    throw new TlsUtilError('INVALID_HOST', `${what} must not be an empty string`)
  }
  // Every message names the entry, so the caller can find it in a long list.
  const quoted = `${what} ${JSON.stringify(host)}`
  if (/\s/.test(host)) {
    throw new TlsUtilError('INVALID_HOST', `${quoted} contains whitespace`)
  }
  if (host.includes('://') || host.includes('/')) {
    throw new TlsUtilError(
      'INVALID_HOST',
      `${quoted} looks like a URL; pass only the host name or IP address`,
    )
  }
  if (host.startsWith('[') || host.endsWith(']')) {
    throw new TlsUtilError('INVALID_HOST', `${quoted}: write IPv6 addresses without brackets, e.g. "::1"`)
  }

  const family = isIP(host)
  if (family === 4) return { type: 'ip', value: host }
  if (family === 6) return { type: 'ip', value: canonicalIPv6(host, quoted) }

  if (host.includes(':')) {
    throw new TlsUtilError(
      'INVALID_HOST',
      `${quoted} is not a valid IP address; if it is "host:port", leave the port out (certificates do not name ports)`,
    )
  }
  return { type: 'dns', value: parseDnsName(host, quoted) }
}

function parseDnsName(host: string, quoted: string): string {
  // DNS names compare case-insensitively; storing lower case keeps SANs and duplicate checks predictable.
  const name = host.toLowerCase()
  if (name.length > MAX_DNS_NAME_LENGTH) {
    throw new TlsUtilError('INVALID_HOST', `${quoted} is longer than ${MAX_DNS_NAME_LENGTH} characters`)
  }
  if (name.endsWith('.')) {
    throw new TlsUtilError('INVALID_HOST', `${quoted} ends with a dot; write it without the trailing dot`)
  }
  const labels = name.split('.')
  const wildcard = labels[0] === '*'
  if (wildcard && labels.length < 2) {
    throw new TlsUtilError('INVALID_HOST', `${quoted}: a wildcard needs a domain after "*."`)
  }
  for (const label of wildcard ? labels.slice(1) : labels) {
    if (label === '*' || label.includes('*')) {
      throw new TlsUtilError(
        'INVALID_HOST',
        `${quoted}: a wildcard is only allowed as the whole first label ("*.")`,
      )
    }
    if (!DNS_LABEL.test(label)) {
      throw new TlsUtilError(
        'INVALID_HOST',
        `${quoted} is not a valid DNS name: label ${JSON.stringify(label)} must be 1-63 letters, digits or hyphens, not starting or ending with a hyphen`,
      )
    }
  }
  // "127.0.0.256" passes the label rules, but it is a mistyped IP address, not a name anyone can resolve.
  if (NUMERIC_LABEL.test(labels[labels.length - 1])) {
    throw new TlsUtilError(
      'INVALID_HOST',
      `${quoted} is not a valid IP address, and a DNS name cannot end in an all-numeric label`,
    )
  }
  return name
}

function canonicalIPv6(host: string, quoted: string): string {
  if (host.includes('%')) {
    throw new TlsUtilError(
      'INVALID_HOST',
      `${quoted}: IPv6 zone identifiers (%...) cannot appear in a certificate`,
    )
  }
  // The WHATWG URL parser prints IPv6 in canonical hex form ("::ffff:127.0.0.1" -> "::ffff:7f00:1"),
  // which is the only notation the X.509 library's address encoder understands.
  return new URL(`http://[${host}]/`).hostname.slice(1, -1)
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value
}
