import { describe, expect, it } from 'vitest'
import { finish, runCli, startCli, useFixture } from './fixture'

const f = useFixture()
const { certs } = f

interface Report {
  count: number
  ok: number
  errors: Record<string, number>
  elapsedMs: number
  callsPerSecond: number
  stoppedBy: string
  connections: number
  latencyMs: { min: number; mean: number; p50: number; p90: number; p99: number; p999: number; max: number }
  histogram: { fromMs: number; toMs: number; count: number }[]
}

function checkConsistent(report: Report): void {
  const errors = Object.values(report.errors).reduce((a, b) => a + b, 0)
  expect(report.ok + errors).toBe(report.count)
  expect(report.histogram.reduce((sum, bin) => sum + bin.count, 0)).toBe(report.ok)
  const l = report.latencyMs
  for (const [low, high] of [
    [l.min, l.p50],
    [l.p50, l.p90],
    [l.p90, l.p99],
    [l.p99, l.p999],
    [l.p999, l.max],
  ])
    expect(low).toBeLessThanOrEqual(high)
  // The rate comes from the exact elapsed time; the report rounds both to 0.001, so the rate
  // recomputed from the rounded elapsedMs may differ by the rounding (0.6 calls/s once, at
  // 21,926 calls/s over 2.3 ms), not more.
  const slowest = (report.count / (report.elapsedMs + 0.0005)) * 1000 - 0.0005
  const fastest = (report.count / (report.elapsedMs - 0.0005)) * 1000 + 0.0005
  expect(report.callsPerSecond).toBeGreaterThanOrEqual(slowest)
  expect(report.callsPerSecond).toBeLessThanOrEqual(fastest)
}

describe('srpc bench', () => {
  it('-n makes exactly that many calls; --json counts, percentiles and histogram add up', async () => {
    const run = await runCli([
      'bench',
      f.address,
      '/echo',
      '-d',
      'ping',
      '-n',
      '300',
      '-c',
      '8',
      '--connections',
      '2',
      '--json',
      ...certs(),
    ])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const report = JSON.parse(run.stdout) as Report
    expect(report).toMatchObject({ count: 300, ok: 300, errors: {}, stoppedBy: 'count', connections: 2 })
    expect(report.histogram).toHaveLength(10)
    checkConsistent(report)
  })

  it('counts failures by code and exits 4 when some calls failed', async () => {
    const run = await runCli(['bench', f.address, '/flaky', '-n', '200', '-c', '4', '--json', ...certs()])
    expect(run.code).toBe(4)
    const report = JSON.parse(run.stdout) as Report
    expect(report.count).toBe(200)
    // The route fails every fourth call it serves.
    expect(report.errors).toEqual({ RESOURCE_EXHAUSTED: 50 })
    expect(report.ok).toBe(150)
    checkConsistent(report)
  })

  it('-z stops after the duration; the text summary shows counts that add up and a drawn histogram', async () => {
    const run = await runCli(['bench', f.address, '/echo', '-z', '400ms', '-c', '4', ...certs()])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const out = run.stdout
    const number = (label: string) => Number(out.match(new RegExp(`^  ${label}:\\s+([\\d.]+)`, 'm'))![1])
    expect(number('Count')).toBeGreaterThan(0)
    expect(number('OK') + number('Errors')).toBe(number('Count'))
    expect(number('Total')).toBeGreaterThanOrEqual(0.4)
    for (const p of ['p50', 'p90', 'p99', 'p99.9', 'max'])
      expect(out).toMatch(new RegExp(`^  ${p.replace('.', '\\.')}\\s+[\\d.]+ ms$`, 'm'))
    const bars = [...out.matchAll(/^\s+[\d.]+ ms \[(\d+)\]\s+\|■*$/gm)]
    expect(bars).toHaveLength(10)
    expect(bars.reduce((sum, bar) => sum + Number(bar[1]), 0)).toBe(number('OK'))
    expect(out).toMatch(new RegExp(`^  \\[OK\\]\\s+${number('OK')} calls$`, 'm'))
    // Piped: no progress bar, no terminal control sequences anywhere.
    expect(out + run.stderr).not.toContain('\u001b[')
  })

  it('exits with the error code when every call failed', async () => {
    const run = await runCli(['bench', f.address, '/deny', '-n', '20', '-c', '2', '--json', ...certs()])
    expect(run.code).toBe(71)
    const report = JSON.parse(run.stdout) as Report
    expect(report).toMatchObject({ count: 20, ok: 0, errors: { PERMISSION_DENIED: 20 }, histogram: [] })
  })

  it('Ctrl-C stops the run and still prints a summary whose counts add up; exit 130', async () => {
    const child = startCli(['bench', f.address, '/echo', '-z', '30s', '-c', '4', '--json', ...certs()])
    const done = finish(child, 20_000)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    child.kill('SIGINT')
    const run = await done
    expect(run.code).toBe(130)
    const report = JSON.parse(run.stdout) as Report
    expect(report.stoppedBy).toBe('interrupt')
    expect(report.count).toBeGreaterThan(0)
    expect(report.elapsedMs).toBeLessThan(25_000)
    checkConsistent(report)
  })
})
