/**
 * The srpc benchmark: srpc against raw node:tls (the ceiling) and grpc-js, in one run, with
 * server and client in separate processes. See apps/bench/README.md.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { selfSigned } from '@srpc/tlsutil'
import { type Args, parseArgs, USAGE } from './args'
import { type CellResult, detectPlacement, type Placement, runCell } from './cell-runner'
import { ratioChart } from './chart'
import { type Metrics, TARGET_LABELS, type TargetName } from './messages'
import { buildRows, markdownTable, type Row, scenarioLegend, textTable } from './report'
import { type Scenario, selectScenarios, TIMING } from './scenarios'

const DEFAULT_OUT = fileURLToPath(new URL('../results/', import.meta.url))

function log(line: string): void {
  process.stderr.write(`${line}\n`)
}

function describeMetrics(scenario: Scenario, m: Metrics): string {
  const parts: string[] = []
  const n = (v: number) => Math.round(v).toLocaleString('en-US')
  switch (scenario.workload('quick').kind) {
    case 'stream':
      parts.push(`${(m.mbPerSec ?? 0).toFixed(1)} MB/s`)
      break
    case 'fleet':
      parts.push(`${n(m.ops)} calls ok, ${m.failedCalls ?? 0} failed`)
      if (m.rssPerConnectionBytes !== undefined)
        parts.push(`RSS ${(m.rssPerConnectionBytes / 1024).toFixed(1)} KiB/conn`)
      break
    default:
      parts.push(`${n(m.rate)}/s`)
  }
  if (m.p50Us !== undefined) parts.push(`p50 ${n(m.p50Us)} µs`, `p99 ${n(m.p99Us ?? 0)} µs`)
  if (m.wireBytesPerCall !== undefined) parts.push(`${n(m.wireBytesPerCall)} B/call on the wire`)
  return parts.join('  ')
}

interface ResultFile {
  meta: { date: string; mode: string; reps: number; node: string }
  scenarios: { id: string; title: string }[]
  rows: Row[]
  cells: CellResult[]
}

function printTable(rows: Row[], reps: number, legend: string): void {
  process.stdout.write(`\n${textTable(rows)}\n\n${legend}\n\n`)
  process.stdout.write(
    `values: median (min–max) over ${reps} repetition${reps > 1 ? 's' : ''}; ratios: median of per-repetition target/raw; targets are informational\n`,
  )
}

/** Writes the Markdown table and the SVG chart that go with a results JSON; returns their names. */
function writeRenderings(jsonPath: string, json: ResultFile): string[] {
  const dir = dirname(jsonPath)
  const base = basename(jsonPath, '.json')
  const svgName = base === 'latest' ? 'ratios.svg' : `${base}-ratios.svg`
  const { mode, reps, node, date } = json.meta
  const subtitle = `${mode} run, ${reps} rep${reps > 1 ? 's' : ''}, median of per-repetition ratios; Node ${node}; ${date.slice(0, 10)}`
  writeFileSync(join(dir, `${base}.md`), `${markdownTable(json.rows)}\n`)
  writeFileSync(join(dir, svgName), ratioChart(json.rows, subtitle))
  return [`${base}.md`, svgName]
}

/** `--render FILE`: the table, Markdown and chart again from a results JSON, without measuring. */
function render(path: string): number {
  const json = JSON.parse(readFileSync(path, 'utf8')) as ResultFile
  printTable(json.rows, json.meta.reps, json.scenarios.map((s) => `${s.id.padEnd(10)} ${s.title}`).join('\n'))
  log(`\nwrote ${writeRenderings(resolve(path), json).join(' and ')} next to ${path}`)
  return 0
}

/** A rough wall-clock estimate for one cell, for the progress header. */
function estimateCellMs(scenario: Scenario, args: Args): number {
  const workload = scenario.workload(args.mode)
  if (workload.kind === 'fleet') return workload.durationMs + 4000
  const t = TIMING[args.mode]
  return t.warmupMs + t.measureMs + (args.mode === 'full' ? 900 : 700)
}

function gitCommit(): string | undefined {
  // A run from an exported tree (no .git) can still say what it measured.
  if (process.env.SRPC_BENCH_COMMIT) return process.env.SRPC_BENCH_COMMIT
  const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' })
  return rev.status === 0 ? rev.stdout.trim() : undefined
}

async function run(args: Args, scenarios: Scenario[]): Promise<number> {
  const placement: Placement = detectPlacement(args.pin)
  const timing = TIMING[args.mode]
  const began = Date.now()
  log(
    `srpc bench (${args.mode}): ${scenarios.length} scenarios × ${args.targets.length} targets × ${args.reps} reps`,
  )
  log(`  ${placement.description}; warmup ${timing.warmupMs} ms + measure ${timing.measureMs} ms per cell`)
  if (process.env.SRPC_BENCH_RAW_PRELOAD)
    log(
      '  WARNING: SRPC_BENCH_RAW_PRELOAD is set: the raw TLS reference is not the bare process (diagnostic run)',
    )
  if (!args.targets.includes('raw'))
    log('  warning: raw TLS is not among the targets, so there are no ratios')

  const estimate =
    scenarios.reduce((sum, s) => sum + estimateCellMs(s, args), 0) * args.targets.length * args.reps
  log(`  about ${Math.ceil(estimate / 60_000)} min; load average now ${loadavg()[0].toFixed(2)}`)
  const loadBefore = loadavg()

  // One certificate for the whole run, handed to every child; verification stays on everywhere.
  const tls = await selfSigned(['127.0.0.1'])
  const cells: CellResult[] = []
  const total = scenarios.length * args.targets.length * args.reps
  let index = 0
  for (let rep = 1; rep <= args.reps; rep++) {
    for (const scenario of scenarios) {
      // Interleave targets, and rotate who goes first, so drift over the run hits all alike.
      const order = args.targets.map((_, i) => args.targets[(i + rep - 1) % args.targets.length])
      for (const target of order) {
        index++
        const prefix = `[${String(index).padStart(String(total).length)}/${total}] rep ${rep}/${args.reps} ${scenario.id.padEnd(10)} ${TARGET_LABELS[target].padEnd(8)}`
        const reason = scenario.unsupported(target)
        if (reason !== undefined) {
          cells.push({
            scenario: scenario.id,
            target,
            rep,
            status: 'n/a',
            error: reason,
            warnings: [],
            wallMs: 0,
          })
          log(`${prefix} ${reason}`)
          continue
        }
        const cell = await runCell(
          {
            scenario: scenario.id,
            target,
            rep,
            server: { target, key: tls.key, cert: tls.cert, ca: tls.ca, compression: scenario.compression },
            client: { target, workload: scenario.workload(args.mode), timing, ca: tls.ca },
            timeoutMs: scenario.timeoutMs(args.mode),
          },
          placement,
        )
        cells.push(cell)
        const took = `(${(cell.wallMs / 1000).toFixed(1)} s)`
        const numbers = cell.metrics ? describeMetrics(scenario, cell.metrics) : ''
        if (cell.status === 'ok') log(`${prefix} ${numbers}  ${took}`)
        else
          log(
            `${prefix} FAILED ${took}${numbers ? `  ${numbers}` : ''}\n    ${cell.error?.split('\n').join('\n    ')}`,
          )
        for (const warning of cell.warnings) log(`    server warning: ${warning}`)
      }
    }
  }

  const rows = buildRows(scenarios, cells, args.targets)
  const seconds = (Date.now() - began) / 1000
  const failed = cells.filter((c) => c.status === 'failed')
  const meta = {
    date: new Date(began).toISOString(),
    mode: args.mode,
    reps: args.reps,
    durationSeconds: Math.round(seconds),
    timing,
    node: process.version,
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    placement: placement.description,
    // Other work on the machine shows up here; a busy machine widens the spread.
    loadAverageBefore: loadBefore.map((l) => Number(l.toFixed(2))),
    loadAverageAfter: loadavg().map((l) => Number(l.toFixed(2))),
    commit: gitCommit(),
    targets: args.targets,
    // Diagnostic switches change what is measured (SRPC_BENCH_RAW_PRELOAD slows the reference):
    // a run with any of them set says so here.
    environment: Object.fromEntries(
      Object.entries(process.env).filter(([key]) => key.startsWith('SRPC_BENCH_')),
    ),
  }
  printTable(rows, args.reps, scenarioLegend(scenarios))
  const outDir = resolve(args.outDir ?? DEFAULT_OUT)
  const base = args.mode === 'quick' ? 'quick' : 'latest'
  mkdirSync(outDir, { recursive: true })
  const json: ResultFile = {
    meta,
    scenarios: scenarios.map((s) => ({ id: s.id, title: s.title, workload: s.workload(args.mode) })),
    rows,
    cells,
  }
  const jsonPath = join(outDir, `${base}.json`)
  writeFileSync(jsonPath, `${JSON.stringify(json, null, 2)}\n`)
  const written = writeRenderings(jsonPath, json)
  log(`\nwrote ${jsonPath}, ${written.join(' and ')} in ${seconds.toFixed(0)} s`)

  if (failed.length > 0) {
    log(`\n${failed.length} cell${failed.length > 1 ? 's' : ''} FAILED:`)
    for (const c of failed)
      log(`  ${c.scenario} ${TARGET_LABELS[c.target as TargetName]} rep ${c.rep}: ${c.error?.split('\n')[0]}`)
    return 1
  }
  return 0
}

let args: Args
let scenarios: Scenario[]
try {
  args = parseArgs(process.argv.slice(2))
  scenarios = selectScenarios(args.only)
} catch (err) {
  log(`${(err as Error).message}\n\n${USAGE}`)
  process.exit(2)
}
if (args.help) {
  log(USAGE)
  process.exit(0)
}
if (args.render !== undefined) process.exit(render(args.render))
run(args, scenarios).then(
  (code) => process.exit(code),
  (err) => {
    log(`bench failed: ${(err as Error).stack ?? err}`)
    process.exit(1)
  },
)
