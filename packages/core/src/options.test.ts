import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { parseAddress, resolveKeepalive, resolvePeerOptions } from './options'

function invalid(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(RpcError.is(err) && err.code).toBe(Code.INVALID_ARGUMENT)
    return (err as RpcError).message
  }
  throw new Error('did not throw')
}

describe('parseAddress', () => {
  it('reads host:port and [ipv6]:port', () => {
    expect(parseAddress('example.com:8443', 'connect')).toEqual({ host: 'example.com', port: 8443 })
    expect(parseAddress('[::1]:50051', 'connect')).toEqual({ host: '::1', port: 50051 })
  })

  it('lets a listener leave out the host and take any port', () => {
    expect(parseAddress(':0', 'listen')).toEqual({ host: '0.0.0.0', port: 0 })
  })

  it('refuses what a client cannot dial, naming the option', () => {
    expect(invalid(() => parseAddress(':443', 'connect'))).toBe('option address needs a host, got ":443"')
    expect(invalid(() => parseAddress('h:0', 'connect'))).toBe('option address port 0 is out of range')
    expect(invalid(() => parseAddress('h:70000', 'listen'))).toBe('option address port 70000 is out of range')
    expect(invalid(() => parseAddress('h', 'connect'))).toMatch(/^option address must be "host:port"/)
  })
})

describe('resolveKeepalive', () => {
  const DEFAULTS = { interval: 30_000, timeout: 10_000 }

  it('is off with false, the defaults when unset, and overrides field by field', () => {
    expect(resolveKeepalive(false, DEFAULTS)).toBe(false)
    expect(resolveKeepalive(undefined, DEFAULTS)).toEqual(DEFAULTS)
    expect(resolveKeepalive({ timeout: 500 }, DEFAULTS)).toEqual({ interval: 30_000, timeout: 500 })
  })

  it('names the bad field', () => {
    expect(invalid(() => resolveKeepalive({ interval: 0 }, DEFAULTS))).toMatch(/^option keepalive\.interval /)
    expect(invalid(() => resolveKeepalive({ timeout: 1.5 }, DEFAULTS))).toMatch(/^option keepalive\.timeout /)
  })
})

describe('resolvePeerOptions', () => {
  const KEEPALIVE = { interval: 60_000, timeout: 20_000 }

  it('gives both ends the same defaults, with the keepalive defaults of the end that asks', () => {
    const resolved = resolvePeerOptions({}, KEEPALIVE)
    expect(resolved).toMatchObject({
      maxFrameSize: 16 * 1024 * 1024,
      streamHighWaterMark: expect.any(Number),
      maxBufferedBytes: 1024 * 1024,
      initialWindow: 1024 * 1024,
      maxWindow: 16 * 1024 * 1024,
      keepalive: KEEPALIVE,
      interceptors: [],
    })
    expect(resolved.compression.enabled).toBe(true)
    const off = resolvePeerOptions({ keepalive: false, compression: false }, KEEPALIVE)
    expect(off.keepalive).toBe(false)
    expect(off.compression.enabled).toBe(false)
  })

  it('names the bad option', () => {
    expect(invalid(() => resolvePeerOptions({ maxFrameSize: 0 }, KEEPALIVE))).toMatch(/^option maxFrameSize /)
    expect(invalid(() => resolvePeerOptions({ maxBufferedBytes: -1 }, KEEPALIVE))).toMatch(
      /^option maxBufferedBytes /,
    )
    expect(invalid(() => resolvePeerOptions({ initialWindow: 2 ** 31 }, KEEPALIVE))).toMatch(
      /^option initialWindow /,
    )
  })
})
