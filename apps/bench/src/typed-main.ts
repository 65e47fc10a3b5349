/**
 * The typed-services scenario: a unary call with a ~300-byte JSON object, 16 in flight, one
 * connection, against srpc typed (JSON, MessagePack), srpc raw bytes, tRPC and grpc-js with JSON
 * serialisers. Server and client run in their own processes (pinned to different cores with
 * taskset when it exists), one target at a time, `--reps` rounds; each row is the median round.
 *
 *   node apps/bench/dist/typed-main.js [--quick] [--reps N] [--cpu-prof DIR] [--no-pin]
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { selfSigned } from '@srpc/tlsutil'
import { TARGET_NAMES, TYPED_TARGETS, type TypedTarget } from './typed/service'

interface Result {
  target: TypedTarget
  calls: number
  rate: number
  p50Us: number
  p99Us: number
  cpuUsPerCall: number
}

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const quick = args.includes('--quick')
const reps = Number(args[args.indexOf('--reps') + 1]) || (quick ? 1 : 3)
const profileDir = args.includes('--cpu-prof') ? args[args.indexOf('--cpu-prof') + 1] : undefined
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
    const rounds = new Map<TypedTarget, Result[]>(TYPED_TARGETS.map((t) => [t, []]))
    for (let rep = 1; rep <= reps; rep++) {
      // The order rotates each round, so drift over the run (other load, heat) hits every target alike.
      const order = TYPED_TARGETS.map((_, i) => TYPED_TARGETS[(i + rep - 1) % TYPED_TARGETS.length])
      for (const target of order) {
        const result = await cell(target, keyFile, certFile, certFile)
        rounds.get(target)!.push(result)
        process.stderr.write(
          `typed ${target} rep ${rep}: ${n(result.rate)}/s p50 ${n(result.p50Us)} µs p99 ${n(result.p99Us)} µs cpu ${result.cpuUsPerCall.toFixed(1)} µs/call\n`,
        )
      }
    }
    const median = (list: Result[]) => [...list].sort((a, b) => a.rate - b.rate)[Math.floor(list.length / 2)]
    const rows = TYPED_TARGETS.map((t) => median(rounds.get(t)!))
    const raw = rows.find((r) => r.target === 'srpc-raw')!
    const rawJson = rows.find((r) => r.target === 'srpc-raw-json')!
    const lines = [
      '| target | calls/s | p50 µs | p99 µs | client CPU µs/call | CPU vs raw bytes | CPU vs raw + JSON |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map(
        (r) =>
          `| ${TARGET_NAMES[r.target]} | ${n(r.rate)} | ${n(r.p50Us)} | ${n(r.p99Us)} | ${r.cpuUsPerCall.toFixed(1)} | ${(r.cpuUsPerCall / raw.cpuUsPerCall).toFixed(2)}× | ${(r.cpuUsPerCall / rawJson.cpuUsPerCall).toFixed(2)}× |`,
      ),
    ]
    const meta = `Node ${process.version}, ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, ${reps} rep(s) × ${MEASURE_MS} ms, median by calls/s; load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, after ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; ${pin ? 'server on core 0, client on core 1' : 'not pinned'}`
    process.stdout.write(`${lines.join('\n')}\n\n${meta}\n`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  process.stderr.write(`typed bench failed: ${err?.stack ?? err}\n`)
  process.exit(1)
})
