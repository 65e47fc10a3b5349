import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cliEnv, runCli, useFixture } from './fixture'

const f = useFixture()
const { certs } = f

describe('srpc call', () => {
  it('prints a JSON reply pretty-printed and exits 0', async () => {
    const run = await runCli(['call', f.address, '/echo', '-d', '{"name":"Ada","tags":[1,2]}', ...certs()])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('{\n  "name": "Ada",\n  "tags": [\n    1,\n    2\n  ]\n}\n')
  })

  it('prints text as text, and --output raw writes exactly the bytes received', async () => {
    const text = await runCli(['call', f.address, '/echo', '-d', 'hello there', ...certs()])
    expect(text.stdout).toBe('hello there\n')
    const raw = await runCli(['call', f.address, '/binary', '--output', 'raw', ...certs()])
    expect(raw.code).toBe(0)
    expect(raw.stdoutBytes).toEqual(Buffer.from([0x00, 0xff, 0x10, 0x80, 0x0a]))
  })

  it('prints bytes that are not UTF-8 as hex, and --output hex always', async () => {
    const auto = await runCli(['call', f.address, '/binary', ...certs()])
    expect(auto.stdout).toBe('00ff10800a\n')
    const hex = await runCli(['call', f.address, '/echo', '-d', 'AB', '-o', 'hex', ...certs()])
    expect(hex.stdout).toBe('4142\n')
  })

  it('--output json prints compact JSON, and fails with exit 1 on a reply that is not JSON', async () => {
    const json = await runCli([
      'call',
      f.address,
      '/echo',
      '-d',
      '{ "a" : [1, 2] }',
      '-o',
      'json',
      ...certs(),
    ])
    expect(json.stdout).toBe('{"a":[1,2]}\n')
    const notJson = await runCli(['call', f.address, '/echo', '-d', 'plain', '-o', 'json', ...certs()])
    expect(notJson.code).toBe(1)
    expect(notJson.stdout).toBe('')
    expect(notJson.stderr).toContain('is not JSON')
  })

  it('reads the payload from a file with -d @file and from stdin with -d -', async () => {
    const file = join(f.certDir, '..', 'payload.bin')
    const bytes = Buffer.from([1, 2, 3, 250, 251])
    await writeFile(file, bytes)
    const fromFile = await runCli(['call', f.address, '/echo', '-d', `@${file}`, '-o', 'raw', ...certs()])
    expect(fromFile.stdoutBytes).toEqual(bytes)
    const fromStdin = await runCli(['call', f.address, '/echo', '-d', '-', ...certs()], {
      input: 'from stdin',
    })
    expect(fromStdin.stdout).toBe('from stdin\n')
    const missing = await runCli(['call', f.address, '/echo', '-d', '@/no/such/file', ...certs()])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain('cannot read the payload file /no/such/file')
  })

  it('sends -H key=value as metadata, keys lowercased', async () => {
    const run = await runCli([
      'call',
      f.address,
      '/metadata',
      '-H',
      'X-Trace=abc=1',
      '-H',
      'user=ada',
      ...certs(),
    ])
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ 'x-trace': 'abc=1', user: 'ada' })
  })

  it('encodes input with the JSON codec reflection names: compact JSON on the wire, usage error for non-JSON', async () => {
    const ok = await runCli(['call', f.address, '/math/add', '-d', '{ "a": 2,\n "b": 40 }', ...certs()])
    expect(ok.stderr).toBe('')
    expect(ok.stdout).toBe('{\n  "sum": 42\n}\n')
    const bad = await runCli(['call', f.address, '/math/add', '-d', 'a=2', ...certs()])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('/math/add takes JSON (codec json), and the -d payload is not JSON')
    expect(bad.stderr).toContain('Usage: srpc call')
    // Without reflection the bytes go as they are, and the server's own check answers.
    const raw = await runCli([
      'call',
      f.address,
      '/math/add',
      '-d',
      '{ "a": 2, "b": 40 }',
      '--no-reflect',
      ...certs(),
    ])
    expect(raw.code).toBe(67)
    expect(raw.stderr).toContain('INVALID_ARGUMENT: not compact')
  })

  it('refuses a route that reflection says is a stream, naming the right command', async () => {
    const run = await runCli(['call', f.address, '/count', ...certs()])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('/count is a server-stream route (reflection says so): use `srpc stream`')
  })

  it('exits with 64 + the gRPC number of the error code', async () => {
    const denied = await runCli(['call', f.address, '/deny', ...certs()])
    expect(denied.code).toBe(71)
    expect(denied.stderr).toBe('srpc: PERMISSION_DENIED: not for you\n')
    const missing = await runCli(['call', f.address, '/nowhere', ...certs()])
    expect(missing.code).toBe(69)
    const late = await runCli(['call', f.address, '/slow', '--timeout', '200ms', ...certs()])
    expect(late.code).toBe(68)
    expect(late.stderr).toContain('DEADLINE_EXCEEDED')
  })

  it('exits 78 (UNAVAILABLE) when nothing listens', async () => {
    const run = await runCli(['call', '127.0.0.1:1', '/echo', ...certs()])
    expect(run.code).toBe(78)
    expect(run.stderr).toContain('srpc: UNAVAILABLE:')
    expect(run.stderr).toContain('ECONNREFUSED')
  })

  it('verifies the server: no CA exits 80 (UNAUTHENTICATED), --insecure connects and warns loudly', async () => {
    const untrusted = await runCli(['call', f.address, '/echo', '-d', 'x'])
    expect(untrusted.code).toBe(80)
    expect(untrusted.stderr).toContain('not signed by a CA this client trusts')
    // --insecure still presents the client certificate of the set (the server wants one).
    const insecure = await runCli(['call', f.address, '/echo', '-d', 'x', '--insecure', ...certs()])
    expect(insecure.code).toBe(0)
    expect(insecure.stdout).toBe('x\n')
    expect(insecure.stderr).toContain('WARNING: --insecure: the server certificate is NOT verified')
  })

  it('takes --ca, --cert and --key files as well as a certificate set', async () => {
    const file = (name: string) => join(f.certDir, name)
    const run = await runCli([
      'call',
      f.address,
      '/echo',
      '-d',
      'files',
      '--ca',
      file('ca.pem'),
      '--cert',
      file('client.pem'),
      '--key',
      file('client-key.pem'),
    ])
    expect(run.stderr).toBe('')
    expect(run.stdout).toBe('files\n')
    expect((await readFile(file('ca.pem'), 'utf8')).startsWith('-----BEGIN CERTIFICATE-----')).toBe(true)
    const noKey = await runCli([
      'call',
      f.address,
      '/echo',
      '--cert',
      file('client.pem'),
      '--ca',
      file('ca.pem'),
    ])
    expect(noKey.code).toBe(2)
    expect(noKey.stderr).toContain('--cert and --key go together')
  })

  it('takes the address and certificate set from SRPC_ADDRESS and SRPC_CERT_DIR', async () => {
    const run = await runCli(['call', '/echo', '-d', 'env'], {
      env: cliEnv({ SRPC_ADDRESS: f.address, SRPC_CERT_DIR: f.certDir }),
    })
    expect(run.stderr).toBe('')
    expect(run.stdout).toBe('env\n')
  })
})

describe('usage errors', () => {
  it('say what was wrong, show the usage, exit 2, and never print a stack', async () => {
    const cases: [string[], string][] = [
      [['call'], 'missing ADDR (host:port), and SRPC_ADDRESS is not set'],
      [['call', f.address], 'missing ROUTE'],
      [['call', f.address, 'echo'], 'ROUTE must start with /'],
      [['call', 'no-port', '/echo'], 'ADDR must be host:port'],
      [['call', f.address, '/echo', '--timeout', 'soon'], '--timeout must be a duration such as 500ms'],
      [['call', f.address, '/echo', '-H', 'novalue'], '-H must be key=value'],
      [['call', f.address, '/echo', '-o', 'yaml'], "option '-o, --output <mode>' argument 'yaml' is invalid"],
      [['call', f.address, '/echo', '--frobnicate'], "unknown option '--frobnicate'"],
      [['bench', f.address, '/echo', '-c', '0'], '--concurrency must be a whole number from 1 to 10000'],
      [['ping', f.address, '-c', 'many'], '--count must be a whole number'],
    ]
    for (const [args, message] of cases) {
      const run = await runCli(args)
      expect(run.code, args.join(' ')).toBe(2)
      expect(run.stderr, args.join(' ')).toContain(message)
      expect(run.stderr, args.join(' ')).toMatch(/Usage: srpc \w+ \[options\]/)
      expect(run.stderr, args.join(' ')).not.toMatch(/\n\s+at /)
      expect(run.stdout).toBe('')
    }
  })

  it('an unknown command suggests the right one', async () => {
    const run = await runCli(['cal'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain("unknown command 'cal'")
    expect(run.stderr).toContain('(Did you mean call?)')
  })

  it('--help on every command shows an example and exits 0; --version prints the version', async () => {
    for (const command of [
      'call',
      'stream',
      'session',
      'list',
      'health',
      'ping',
      'bench',
      'certs',
      'certs create',
      'certs show',
    ]) {
      const run = await runCli([...command.split(' '), '--help'])
      expect(run.code, command).toBe(0)
      expect(run.stdout, command).toContain(`Usage: srpc ${command}`)
      expect(run.stdout, command).toContain(`Examples:\n  $ srpc ${command}`)
    }
    const version = await runCli(['--version'])
    expect(version.code).toBe(0)
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string
    }
    expect(version.stdout).toBe(`${pkg.version}\n`)
  })
})

describe('srpc call, less common paths', () => {
  it('a msgpack route: the JSON input is sent as MessagePack and the reply shown as JSON (hex on request)', async () => {
    const run = await runCli(['call', f.address, '/packed', '-d', '{"k":[1,"x"]}', ...certs()])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({ got: { k: [1, 'x'] }, at: '1970-01-01T00:00:00.000Z' })
    expect(run.stdout).toContain('\n  "got"')
    const hex = await runCli(['call', f.address, '/packed', '-d', '{"k":1}', '-o', 'hex', ...certs()])
    expect(hex.code).toBe(0)
    // map16 of 2: "got" → map16 {k: 1}, "at" → Date(0) as the timestamp extension (fixext4, type -1).
    expect(hex.stdout).toBe('de0002a3676f74de0001a16b01a26174d6ff00000000\n')
    const notJson = await runCli(['call', f.address, '/packed', '-d', 'not json', ...certs()])
    expect(notJson.code).toBe(2)
    expect(notJson.stderr).toContain('/packed takes JSON (codec msgpack), and the -d payload is not JSON')
  })

  it('a codec the CLI cannot encode (protobuf): bytes sent as given, said on stderr, reply printed as hex', async () => {
    const run = await runCli(['call', f.address, '/proto', '-d', 'k', ...certs()])
    expect(run.code).toBe(0)
    expect(run.stderr).toBe(
      'srpc: note: /proto uses the protobuf codec, which srpc cannot encode from JSON: the -d payload is sent as raw bytes\n',
    )
    expect(run.stdout).toBe('6b\n')
  })

  it('--servername sets the name the certificate must carry', async () => {
    const right = await runCli([
      'call',
      f.address,
      '/echo',
      '-d',
      'ok',
      '--servername',
      'localhost',
      ...certs(),
    ])
    expect(right.stdout).toBe('ok\n')
    const wrong = await runCli(['call', f.address, '/echo', '--servername', 'elsewhere.example', ...certs()])
    expect(wrong.code).toBe(80)
    expect(wrong.stderr).toContain('elsewhere.example')
  })
})
