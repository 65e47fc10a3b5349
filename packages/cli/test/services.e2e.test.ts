import { describe, expect, it } from 'vitest'
import {
  finish,
  HEALTH_CHECK,
  HEALTH_WATCH,
  REFLECTION_LIST,
  runCli,
  startCli,
  useFixture,
  waitForOutput,
} from './fixture'

const f = useFixture()
const { certs } = f

describe('srpc list', () => {
  it('shows every route with its kind, codec and schemas as a table', async () => {
    const run = await runCli(['list', f.address, ...certs()])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const lines = run.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^ROUTE\s+KIND\s+CODEC\s+INPUT\s+OUTPUT\s+DESCRIPTION$/)
    const row = (route: string) => lines.find((line) => line.startsWith(`${route} `))
    expect(row('/math/add')).toMatch(
      /^\/math\/add\s+unary\s+json\s+\{a: number, b: number\}\s+\{sum: number\}\s+Adds two numbers$/,
    )
    expect(row('/count')).toMatch(/^\/count\s+server-stream\s+json\s+-\s+-\s+Three numbered chunks$/)
    expect(row('/chat')).toMatch(/^\/chat\s+session\s+-\s+/)
    // A route registered without a description shows "-" where its kind and codec would be.
    expect(row('/echo')).toMatch(/^\/echo\s+-\s+-\s+-\s+-$/)
    for (const route of [HEALTH_CHECK, HEALTH_WATCH, REFLECTION_LIST]) expect(row(route), route).toBeDefined()
  })

  it('--json prints the routes with their schemas in full', async () => {
    const run = await runCli(['list', f.address, '--json', ...certs()])
    expect(run.code).toBe(0)
    const { routes } = JSON.parse(run.stdout) as { routes: { route: string; input?: unknown }[] }
    const add = routes.find((entry) => entry.route === '/math/add')
    expect(add).toMatchObject({
      kind: 'unary',
      codec: 'json',
      input: { type: 'object', required: ['a', 'b'] },
      description: 'Adds two numbers',
    })
  })
})

describe('srpc health', () => {
  it('prints SERVING and exits 0 for the whole server', async () => {
    const run = await runCli(['health', f.address, ...certs()])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('SERVING\n')
  })

  it('exits 3 for a NOT_SERVING service, and 69 (NOT_FOUND) for a service the server never set', async () => {
    f.server.health.set('billing', 'NOT_SERVING')
    const down = await runCli(['health', f.address, 'billing', '--json', ...certs()])
    expect(down.code).toBe(3)
    expect(down.stdout).toBe('{"status":"NOT_SERVING"}\n')
    const unknown = await runCli(['health', f.address, 'nobody', ...certs()])
    expect(unknown.code).toBe(69)
    expect(unknown.stderr).toMatch(/^srpc: NOT_FOUND: health of "nobody": unknown service "?nobody"?\n/)
  })

  it('--watch prints the status, then each change, until Ctrl-C', async () => {
    f.server.health.set('search', 'SERVING')
    const child = startCli(['health', f.address, 'search', '--watch', ...certs()])
    const done = finish(child, 15_000)
    await waitForOutput(child, 'SERVING\n')
    f.server.health.set('search', 'NOT_SERVING')
    await waitForOutput(child, 'NOT_SERVING\n')
    child.kill('SIGINT')
    const run = await done
    expect(run.code).toBe(130)
    expect(run.stdout).toBe('SERVING\nNOT_SERVING\n')
  })
})

describe('srpc ping', () => {
  it('prints one reply per ping and min/avg/max like ping(8)', async () => {
    const run = await runCli(['ping', f.address, '-c', '3', '-i', '20ms', ...certs()])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const replies = run.stdout.match(/^reply from 127\.0\.0\.1:\d+: seq=\d time=\d+\.\d{3} ms$/gm) ?? []
    expect(replies.map((line) => line.match(/seq=(\d)/)![1])).toEqual(['1', '2', '3'])
    expect(run.stdout).toContain('3 sent, 3 received, 0% lost')
    const [, min, avg, max] = run.stdout
      .match(/rtt min\/avg\/max = ([\d.]+)\/([\d.]+)\/([\d.]+) ms/)!
      .map(Number)
    expect(min).toBeGreaterThan(0)
    expect(min).toBeLessThanOrEqual(avg)
    expect(avg).toBeLessThanOrEqual(max)
  })

  it('exits 78 (UNAVAILABLE) when it cannot connect', async () => {
    const run = await runCli(['ping', '127.0.0.1:1', '-c', '1', ...certs()])
    expect(run.code).toBe(78)
    expect(run.stderr).toContain('UNAVAILABLE')
  })
})
