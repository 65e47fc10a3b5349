import { invalidOption, positiveIntOption } from '@srpc/protocol'

// Run-time options both ends resolve: addresses and keepalive. The pure validators they use
// (invalidOption, positiveIntOption, …) live in @srpc/protocol, whose decoder checks its limits with them.

/**
 * Parses `host:port` or `[ipv6]:port`. A listener may leave the host empty (all interfaces)
 * and use port 0 (any free port); a client may not.
 */
export function parseAddress(address: string, role: 'listen' | 'connect'): { host: string; port: number } {
  const match = typeof address === 'string' ? /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(address) : null
  if (!match) invalidOption('address', `must be "host:port" or "[ipv6]:port", got ${JSON.stringify(address)}`)
  const port = Number(match[3])
  const host = match[1] ?? match[2]
  if (port > 65535 || (role === 'connect' && port === 0))
    invalidOption('address', `port ${port} is out of range`)
  if (host === '' && role === 'connect')
    invalidOption('address', `needs a host, got ${JSON.stringify(address)}`)
  return { host: host === '' ? '0.0.0.0' : host, port }
}

export interface KeepaliveOptions {
  /** Idle time before a ping, ms. */
  interval?: number
  /** How long to wait for the answer, ms. */
  timeout?: number
}

/** Resolves a keepalive option: `false` is off, an object overrides the defaults. */
export function resolveKeepalive(
  value: KeepaliveOptions | false | undefined,
  defaults: { interval: number; timeout: number },
): { interval: number; timeout: number } | false {
  if (value === false) return false
  return {
    interval: positiveIntOption('keepalive.interval', value?.interval, defaults.interval),
    timeout: positiveIntOption('keepalive.timeout', value?.timeout, defaults.timeout),
  }
}
