import type { CellResult } from './cell-runner'
import { TARGET_LABELS, TARGETS, type TargetName } from './messages'
import type { Goal, MetricKey, RowSpec, Scenario } from './scenarios'

/** Median and spread of one metric over the repetitions. */
export interface Stat {
  median: number
  min: number
  max: number
  n: number
}

export type Cell =
  | { kind: 'value'; stat: Stat; failed: boolean }
  | { kind: 'failed' }
  | { kind: 'n/a'; reason: string }
  | { kind: 'absent' }

export interface GoalResult {
  text: string
  /** The number compared with the goal (a ratio, or a count for "zero"). */
  value: number | undefined
  pass: boolean | undefined
}

export interface Row {
  scenario: string
  title: string
  metric: MetricKey
  label: string
  better: 'higher' | 'lower'
  chart: RowSpec['chart']
  cells: Record<TargetName, Cell>
  /** Per-repetition target/raw ratios (same repetition), summarised. */
  ratios: Partial<Record<'srpc' | 'grpc', Stat>>
  goal?: GoalResult
}

export function stat(values: number[]): Stat | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return undefined
  const mid = v.length >> 1
  const median = v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
  return { median, min: v[0], max: v[v.length - 1], n: v.length }
}

export function buildRows(scenarios: Scenario[], cells: CellResult[], targets: readonly TargetName[]): Row[] {
  const rows: Row[] = []
  // By spec, not by metric: a scenario may show one metric twice, against two goals (h-default).
  const rowOf = new Map<RowSpec, Row>()
  for (const scenario of scenarios) {
    const mine = cells.filter((c) => c.scenario === scenario.id)
    for (const spec of scenario.rows) {
      const row: Row = {
        scenario: scenario.id,
        title: scenario.title,
        metric: spec.metric,
        label: spec.label,
        better: spec.better,
        chart: spec.chart,
        cells: {} as Record<TargetName, Cell>,
        ratios: {},
      }
      for (const target of TARGETS) row.cells[target] = cellOf(mine, target, spec.metric, targets)
      for (const target of ['srpc', 'grpc'] as const) {
        const perRep: number[] = []
        for (const c of mine.filter((c) => c.target === target)) {
          const raw = mine.find((r) => r.target === 'raw' && r.rep === c.rep)
          const value = c.metrics?.[spec.metric]
          const base = raw?.metrics?.[spec.metric]
          if (value !== undefined && base !== undefined && base !== 0) perRep.push(value / base)
        }
        const s = stat(perRep)
        if (s) row.ratios[target] = s
      }
      rows.push(row)
      rowOf.set(spec, row)
    }
  }
  for (const scenario of scenarios) {
    for (const spec of scenario.rows) {
      if (!spec.goal) continue
      const row = rowOf.get(spec)!
      row.goal = evaluateGoal(spec.goal, row, rows)
    }
  }
  return rows
}

function cellOf(
  cells: CellResult[],
  target: TargetName,
  metric: MetricKey,
  targets: readonly TargetName[],
): Cell {
  if (!targets.includes(target)) return { kind: 'absent' }
  const mine = cells.filter((c) => c.target === target)
  const na = mine.find((c) => c.status === 'n/a')
  if (na) return { kind: 'n/a', reason: na.error ?? 'n/a' }
  if (mine.length === 0) return { kind: 'absent' }
  const s = stat(mine.map((c) => c.metrics?.[metric]).filter((v): v is number => v !== undefined))
  const failed = mine.some((c) => c.status === 'failed')
  return s ? { kind: 'value', stat: s, failed } : { kind: 'failed' }
}

function evaluateGoal(goal: Goal, row: Row, rows: Row[]): GoalResult {
  const srpc = row.cells.srpc
  const failed = srpc.kind === 'failed' || (srpc.kind === 'value' && srpc.failed)
  const verdict = (value: number | undefined, ok: (v: number) => boolean): GoalResult => ({
    text: goal.text,
    value,
    pass: failed ? false : value === undefined ? undefined : ok(value),
  })
  switch (goal.kind) {
    case 'ratio-max':
      return verdict(row.ratios.srpc?.median, (v) => v <= goal.max)
    case 'ratio-min':
      return verdict(row.ratios.srpc?.median, (v) => v >= goal.min)
    case 'vs-own': {
      const other = rows.find((r) => r.scenario === goal.scenario && r.metric === row.metric)?.cells.srpc
      const value =
        srpc.kind === 'value' && other?.kind === 'value' && other.stat.median > 0
          ? srpc.stat.median / other.stat.median
          : undefined
      return verdict(value, (v) => v <= goal.max)
    }
    case 'vs-own-min': {
      const other = rows.find((r) => r.scenario === goal.scenario && r.metric === row.metric)?.cells.srpc
      const value =
        srpc.kind === 'value' && other?.kind === 'value' && other.stat.median > 0
          ? srpc.stat.median / other.stat.median
          : undefined
      return verdict(value, (v) => v >= goal.min)
    }
    case 'zero':
      return verdict(srpc.kind === 'value' ? srpc.stat.max : undefined, (v) => v === 0)
  }
}

// --- formatting ---

function formatNumber(metric: MetricKey, value: number): string {
  if (metric === 'rssPerConnectionBytes') return (value / 1024).toFixed(1)
  if (metric === 'mbPerSec' || metric === 'clientCpuUsPerOp')
    return value < 100 ? value.toFixed(1) : Math.round(value).toLocaleString('en-US')
  return Math.round(value).toLocaleString('en-US')
}

export function metricLabel(row: Row): string {
  return row.metric === 'rssPerConnectionBytes' ? 'server RSS/conn KiB' : row.label
}

function formatCell(row: Row, cell: Cell): string {
  switch (cell.kind) {
    case 'absent':
      return '—'
    case 'n/a':
      return cell.reason
    case 'failed':
      return 'FAILED'
    case 'value': {
      const { median, min, max, n } = cell.stat
      const main = formatNumber(row.metric, median)
      const spread = n > 1 ? ` (${formatNumber(row.metric, min)}–${formatNumber(row.metric, max)})` : ''
      return `${main}${spread}${cell.failed ? ' FAILED' : ''}`
    }
  }
}

function formatRatio(s: Stat | undefined): string {
  if (!s) return '—'
  const spread = s.n > 1 ? ` (${s.min.toFixed(2)}–${s.max.toFixed(2)})` : ''
  return `${s.median.toFixed(2)}×${spread}`
}

function formatGoal(goal: GoalResult | undefined): string {
  if (!goal) return ''
  const mark = goal.pass === undefined ? '?' : goal.pass ? 'pass' : 'FAIL'
  // Ratio goals show the ratio they were judged on (for e-pp it is against srpc's own a, not raw).
  const value = goal.value !== undefined && goal.text.includes('×') ? ` (${goal.value.toFixed(2)}×)` : ''
  return `${mark}${value}: ${goal.text}`
}

export const TABLE_HEADER = [
  'scenario',
  'metric',
  TARGET_LABELS.raw,
  TARGET_LABELS.srpc,
  TARGET_LABELS.grpc,
  'srpc/raw',
  'grpc/raw',
  'srpc target',
]

export function tableCells(rows: Row[]): string[][] {
  return rows.map((row) => [
    row.scenario,
    metricLabel(row),
    formatCell(row, row.cells.raw),
    formatCell(row, row.cells.srpc),
    formatCell(row, row.cells.grpc),
    formatRatio(row.ratios.srpc),
    formatRatio(row.ratios.grpc),
    formatGoal(row.goal),
  ])
}

export function textTable(rows: Row[]): string {
  const body = tableCells(rows)
  const all = [TABLE_HEADER, ...body]
  const widths = TABLE_HEADER.map((_, i) => Math.max(...all.map((r) => r[i].length)))
  const line = (r: string[]) =>
    r
      .map((c, i) => (i >= 2 && i <= 6 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd()
  const out = [line(TABLE_HEADER), widths.map((w) => '-'.repeat(w)).join('  ')]
  let last = ''
  for (let i = 0; i < body.length; i++) {
    const r = [...body[i]]
    if (r[0] === last) r[0] = ''
    else last = r[0]
    out.push(line(r))
  }
  return out.join('\n')
}

export function markdownTable(rows: Row[]): string {
  const body = tableCells(rows)
  const out = [
    `| ${TABLE_HEADER.join(' | ')} |`,
    `|${TABLE_HEADER.map((_, i) => (i >= 2 && i <= 6 ? '---:' : '---')).join('|')}|`,
  ]
  let last = ''
  for (const r of body) {
    const cells = [...r]
    if (cells[0] === last) cells[0] = ''
    else last = cells[0]
    out.push(`| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`)
  }
  return out.join('\n')
}

export function scenarioLegend(scenarios: Scenario[]): string {
  return scenarios.map((s) => `${s.id.padEnd(10)} ${s.title}`).join('\n')
}
