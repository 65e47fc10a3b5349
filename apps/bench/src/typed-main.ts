/**
 * The typed-services scenario: a unary call with a ~300-byte JSON object, 16 in flight, one
 * connection, against srpc typed (JSON, MessagePack), srpc raw bytes, tRPC and grpc-js with JSON
 * serialisers. Server and client run in their own processes (pinned to different cores with
 * taskset when it exists), one target at a time, `--reps` rounds; each row is the median round.
 *
 *   node apps/bench/dist/typed-main.js [--quick] [--reps N] [--targets a,b] [--cpu-prof DIR] [--no-pin]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { selfSigned } from '@srpc/tlsutil'
import { DIAGNOSTIC_TARGETS, TARGET_NAMES, TYPED_TARGETS, type TypedTarget } from './typed/service'

interface Result {
  target: TypedTarget
  calls: number
  rate: number
  p50Us: number
  p99Us: number
  cpuUsPerCall: number
  /** Raw target only: CPU µs of the JSON a typed client must do per call (typed-client.ts, jsonAlone). */
  jsonUsPerCall?: number
}

/** `--targets a,b`: the named targets in the table's order; a name that is not a target is an error. */
function parseTargets(list: string | undefined): readonly TypedTarget[] {
  const known: readonly TypedTarget[] = [...TYPED_TARGETS, ...DIAGNOSTIC_TARGETS]
  const names = (list ?? '').split(',').filter((name) => name !== '')
  const unknown = names.filter((name) => !known.includes(name as TypedTarget))
  if (names.length === 0 || unknown.length > 0)
    throw new Error(`--targets takes a comma-separated list of ${known.join(', ')}; got ${list}`)
  return known.filter((target) => names.includes(target))
}

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const reps = Number(args[args.indexOf('--reps') + 1]) || (quick ? 1 : 3)
const profileDir = args.includes('--cpu-prof') ? args[args.indexOf('--cpu-prof') + 1] : undefined
const targets = args.includes('--targets') ? parseTargets(args[args.indexOf('--targets') + 1]) : TYPED_TARGETS
const pin = !args.includes('--no-pin') && spawnSync('taskset', ['-c', '0', 'true']).status === 0
const [WARMUP_MS, MEASURE_MS] = quick ? [200, 500] : [1500, 4000]

function node(core: string, script: string, argv: string[], nodeArgs: string[] = []): ChildProcess {
  const command = [...nodeArgs, join(here, script), ...argv]
  return pin
    ? spawn('taskset', ['-c', core, process.execPath, ...command], { stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, command, { stdio: ['ignore', 'pipe', 'inherit'] })
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout!.on('data', (d) => {
      out += d
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve(out.slice(0, nl))
    })
    child.on('exit', (code) => reject(new Error(`exited with ${code} before answering`)))
  })
}

async function cell(target: TypedTarget, keyFile: string, certFile: string, caFile: string): Promise<Result> {
  const profile = (side: string) =>
    profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${side}-${target}.cpuprofile`]
      : []
  const server = node('0', 'typed-server.js', [target, keyFile, certFile], profile('server'))
  try {
    const { port } = JSON.parse(await firstLine(server)) as { port: number }
    const client = node(
      '1',
      'typed-client.js',
      [target, String(port), caFile, String(WARMUP_MS), String(MEASURE_MS)],
      profile('client'),
    )
    return JSON.parse(await firstLine(client)) as Result
  } finally {
    server.kill('SIGTERM')
  }
}

/**
 * What JSON alone costs against raw bytes' whole call, per round (both measured in the raw
 * client's process, on the same core, seconds apart): what any typed JSON client adds, as it must
 * stringify its object and parse the reply. Empty when the raw target did not run.
 */
function jsonFloor(rawRounds: Result[]): string {
  const measured = rawRounds.filter((r) => r.jsonUsPerCall !== undefined)
  if (measured.length === 0) return ''
  const mid = <T>(list: T[], key: (v: T) => number) =>
    key([...list].sort((a, b) => key(a) - key(b))[Math.floor(list.length / 2)])
  const json = mid(measured, (r) => r.jsonUsPerCall!)
  const share = mid(measured, (r) => r.jsonUsPerCall! / r.cpuUsPerCall)
  const each = measured
    .map((r) => `${r.jsonUsPerCall!.toFixed(1)} µs = ${(r.jsonUsPerCall! / r.cpuUsPerCall).toFixed(2)}×`)
    .join(', ')
  return (
    `JSON alone (stringify + Buffer.from of the request, toString + parse of a reply, in a loop in the raw ` +
    `client's process after its window; per round: ${each}): median ${json.toFixed(1)} µs per call, ` +
    `${share.toFixed(2)}× raw bytes' whole call: raw bytes + JSON alone is ${(1 + share).toFixed(2)}× raw bytes (in a real ` +
    `call some of the JSON hides: a busier client handles more replies per read and write).\n\n`
  )
}

/** `a / b` as `1.23×`, or `–` when `b` did not run. */
const ratio = (a: number, b: number) => (Number.isNaN(b) ? '–' : `${(a / b).toFixed(2)}×`)
const n = (v: number) => Math.round(v).toLocaleString('en-US')

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'srpc-typed-bench-'))
  try {
    const { serverOptions } = await selfSigned(['127.0.0.1'])
    const keyFile = join(dir, 'key.pem')
    const certFile = join(dir, 'cert.pem')
    writeFileSync(keyFile, String(serverOptions.key))
    writeFileSync(certFile, String(serverOptions.cert))
    if (profileDir) mkdirSync(profileDir, { recursive: true })
    const loadBefore = loadavg()
    const rounds = new Map<TypedTarget, Result[]>(targets.map((t) => [t, []]))
    for (let rep = 1; rep <= reps; rep++) {
      // The order rotates each round, so drift over the run (other load, heat) hits every target alike.
      const order = targets.map((_, i) => targets[(i + rep - 1) % targets.length])
      for (const target of order) {
        const result = await cell(target, keyFile, certFile, certFile)
        rounds.get(target)!.push(result)
        process.stderr.write(
          `typed ${target} rep ${rep}: ${n(result.rate)}/s p50 ${n(result.p50Us)} µs p99 ${n(result.p99Us)} µs cpu ${result.cpuUsPerCall.toFixed(1)} µs/call${result.jsonUsPerCall === undefined ? '' : `, JSON alone ${result.jsonUsPerCall.toFixed(1)} µs`}\n`,
        )
      }
    }
    const median = (list: Result[]) => [...list].sort((a, b) => a.rate - b.rate)[Math.floor(list.length / 2)]
    const rows = targets.map((t) => median(rounds.get(t)!))
    const cpuOf = (target: TypedTarget) => rows.find((r) => r.target === target)?.cpuUsPerCall ?? Number.NaN
    const raw = cpuOf('srpc-raw')
    const rawJson = cpuOf('srpc-raw-json')
    // Other work on the machine only ever adds CPU per call (preemption, lost batching, evicted
    // caches), so with several rounds the lowest is the closest to the target's own cost.
    const lowest = (target: TypedTarget) => Math.min(...(rounds.get(target) ?? []).map((r) => r.cpuUsPerCall))
    const rawLowest = targets.includes('srpc-raw') ? lowest('srpc-raw') : Number.NaN
    const lines = [
      '| target | calls/s | p50 µs | p99 µs | client CPU µs/call | CPU vs raw bytes | CPU vs raw + JSON | lowest round: CPU µs/call, vs raw bytes |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${TARGET_NAMES[r.target]} | ${n(r.rate)} | ${n(r.p50Us)} | ${n(r.p99Us)} | ${r.cpuUsPerCall.toFixed(1)} | ${ratio(r.cpuUsPerCall, raw)} | ${ratio(r.cpuUsPerCall, rawJson)} | ${lowest(r.target).toFixed(1)}, ${ratio(lowest(r.target), rawLowest)} |`,
      ),
    ]
    const floor = jsonFloor(rounds.get('srpc-raw') ?? [])
    const meta = `Node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, ${reps} rep(s) × ${MEASURE_MS} ms, median by calls/s; load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; ${pin ? 'server on core 0, client on core 1' : 'not pinned'}`
    process.stdout.write(`${lines.join('\n')}\n\n${floor}${meta}\n`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  process.stderr.write(`typed bench failed: ${err?.stack ?? err}\n`)
  process.exit(1)
})
