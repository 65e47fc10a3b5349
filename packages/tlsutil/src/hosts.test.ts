import { describe, expect, it } from 'vitest'
import { parseHosts } from './hosts'

describe('parseHosts', () => {
  it('sorts hosts into IP and DNS entries, keeping their order', () => {
    expect(parseHosts(['127.0.0.1', 'localhost', '::1', 'api.example.com', '*.svc.local'])).toEqual([
      { type: 'ip', value: '127.0.0.1' },
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '::1' },
      { type: 'dns', value: 'api.example.com' },
      { type: 'dns', value: '*.svc.local' },
    ])
  })

  it('lower-cases DNS names, writes IPv6 in canonical form and drops duplicates', () => {
    expect(
      parseHosts(['LocalHost', 'localhost', '0:0:0:0:0:0:0:1', '::1', '::ffff:127.0.0.1', 'FE80::A']),
    ).toEqual([
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '::1' },
      { type: 'ip', value: '::ffff:7f00:1' },
      { type: 'ip', value: 'fe80::a' },
    ])
  })

  it('accepts labels of 63 characters and names of 253', () => {
    const label = 'a'.repeat(63)
    const name = [label, label, label, 'b'.repeat(61)].join('.')
    expect(name).toHaveLength(253)
    expect(parseHosts([name])).toEqual([{ type: 'dns', value: name }])
  })

  it.each([
    [[], 'EMPTY_HOSTS', /at least one/],
    [undefined, 'EMPTY_HOSTS', /at least one/],
  ])('refuses a missing or empty list (%j)', (hosts, code, message) => {
    expect(() => parseHosts(hosts as string[] | undefined)).toThrow(
      expect.objectContaining({ code, message: expect.stringMatching(message) }),
    )
  })

  it.each([
    ['', /hosts\[1\] must not be an empty string/],
    ['my host', /"my host" contains whitespace/],
    [' localhost', /contains whitespace/],
    ['https://example.com', /looks like a URL/],
    ['example.com/path', /looks like a URL/],
    ['localhost:8443', /leave the port out/],
    ['127.0.0.1:8443', /leave the port out/],
    ['[::1]', /without brackets/],
    ['fe80::1%eth0', /zone identifiers/],
    ['::1::2', /not a valid IP address/],
    ['127.0.0.256', /not a valid IP address/],
    ['999.1.1.1', /not a valid IP address/],
    ['-api.example.com', /label "-api"/],
    ['api-.example.com', /label "api-"/],
    ['under_score.example.com', /label "under_score"/],
    ['a..b', /label ""/],
    ['example.com.', /trailing dot/],
    [`${'a'.repeat(64)}.com`, /must be 1-63/],
    [`${'a.'.repeat(127)}com`, /longer than 253/],
    ['*', /wildcard needs a domain/],
    ['api.*.example.com', /only allowed as the whole first label/],
    ['*api.example.com', /only allowed as the whole first label/],
  ])('refuses %j with INVALID_HOST', (host, message) => {
    expect(() => parseHosts(['localhost', host])).toThrow(
      expect.objectContaining({
        name: 'TlsUtilError',
        code: 'INVALID_HOST',
        message: expect.stringMatching(message),
      }),
    )
  })

  it('refuses entries that are not strings', () => {
    expect(() => parseHosts([42 as unknown as string])).toThrow(
      expect.objectContaining({ code: 'INVALID_HOST', message: 'hosts[0] must be a string, got number' }),
    )
  })

  it('refuses a host list that is not an array', () => {
    expect(() => parseHosts('localhost' as unknown as string[])).toThrow(
      expect.objectContaining({
        code: 'INVALID_ARGUMENT',
        message: expect.stringMatching(/array of strings/),
      }),
    )
  })
})
