import { TARGET_LABELS } from './messages'
import { metricLabel, type Row } from './report'

const COLORS = { srpc: '#2563eb', grpc: '#d97706' } as const
const WIDTH = 760
const LABEL_WIDTH = 190
const RIGHT_PAD = 70
const BAR_HEIGHT = 11
const ROW_GAP = 8
const PANEL_GAP = 36

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/** A scale end that is a multiple of 0.5 above the largest ratio (and above 1.0). */
function scaleMax(values: number[]): number {
  const max = Math.max(1.25, ...values.filter(Number.isFinite))
  // Past 4x the bar is cut (and marked with its value): the interesting part is near 1.0.
  return Math.min(Math.ceil(max * 2) / 2, 4)
}

/**
 * The ratio chart as a hand-written SVG: for every charted row, one bar for srpc/raw and one
 * for grpc/raw, with a line at 1.0 (raw TLS). Throughput and latency are separate panels because
 * "better" points in opposite directions.
 */
export function ratioChart(rows: Row[], subtitle: string): string {
  const panels = [
    { key: 'throughput', title: 'Throughput relative to raw TLS (higher is better, raw = 1.0)' },
    { key: 'latency', title: 'Latency relative to raw TLS (lower is better, raw = 1.0)' },
  ] as const
  const parts: string[] = []
  let y = 48
  parts.push(
    `<text x="12" y="22" font-size="15" font-weight="bold">srpc and grpc-js against raw node:tls</text>`,
  )
  parts.push(`<text x="12" y="38" font-size="11" fill="#555">${escapeXml(subtitle)}</text>`)
  for (const panel of panels) {
    const charted = rows.filter((r) => r.chart === panel.key)
    if (charted.length === 0) continue
    const max = scaleMax(charted.flatMap((r) => [r.ratios.srpc?.median ?? 0, r.ratios.grpc?.median ?? 0]))
    const plotWidth = WIDTH - LABEL_WIDTH - RIGHT_PAD
    const x = (v: number) => LABEL_WIDTH + (Math.min(v, max) / max) * plotWidth
    y += 14
    parts.push(`<text x="12" y="${y}" font-size="12" font-weight="bold">${escapeXml(panel.title)}</text>`)
    y += 10
    const top = y
    for (const row of charted) {
      const label = `${row.scenario} ${metricLabel(row)}`
      parts.push(
        `<text x="${LABEL_WIDTH - 8}" y="${y + BAR_HEIGHT + 4}" font-size="11" text-anchor="end">${escapeXml(label)}</text>`,
      )
      for (const target of ['srpc', 'grpc'] as const) {
        const ratio = row.ratios[target]
        const cell = row.cells[target]
        if (ratio) {
          const w = Math.max(1, x(ratio.median) - LABEL_WIDTH)
          const clipped = ratio.median > max ? ' ▶' : ''
          parts.push(
            `<rect x="${LABEL_WIDTH}" y="${y}" width="${w.toFixed(1)}" height="${BAR_HEIGHT}" fill="${COLORS[target]}"><title>${TARGET_LABELS[target]}: ${ratio.median.toFixed(3)}× (${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)})</title></rect>`,
          )
          parts.push(
            `<text x="${(LABEL_WIDTH + w + 4).toFixed(1)}" y="${y + BAR_HEIGHT - 2}" font-size="10" fill="#333">${ratio.median.toFixed(2)}×${clipped}</text>`,
          )
        } else {
          const why = cell.kind === 'n/a' ? 'n/a' : cell.kind === 'absent' ? 'not run' : 'failed'
          parts.push(
            `<text x="${LABEL_WIDTH + 4}" y="${y + BAR_HEIGHT - 2}" font-size="10" fill="#999">${TARGET_LABELS[target]}: ${why}</text>`,
          )
        }
        y += BAR_HEIGHT + 1
      }
      y += ROW_GAP
    }
    const bottom = y - ROW_GAP + 2
    parts.push(`<line x1="${LABEL_WIDTH}" y1="${top - 2}" x2="${LABEL_WIDTH}" y2="${bottom}" stroke="#888"/>`)
    parts.push(
      `<line x1="${x(1).toFixed(1)}" y1="${top - 4}" x2="${x(1).toFixed(1)}" y2="${bottom}" stroke="#111" stroke-dasharray="4 3"/>`,
    )
    for (let t = 0; t <= max + 1e-9; t += 0.5) {
      parts.push(
        `<text x="${x(t).toFixed(1)}" y="${bottom + 12}" font-size="9" text-anchor="middle" fill="#555">${t.toFixed(1)}</text>`,
      )
    }
    y = bottom + 12 + PANEL_GAP - 20
  }
  y += 8
  let lx = LABEL_WIDTH
  for (const target of ['srpc', 'grpc'] as const) {
    parts.push(`<rect x="${lx}" y="${y}" width="12" height="10" fill="${COLORS[target]}"/>`)
    parts.push(`<text x="${lx + 16}" y="${y + 9}" font-size="11">${TARGET_LABELS[target]} / raw TLS</text>`)
    lx += 140
  }
  parts.push(`<text x="${lx}" y="${y + 9}" font-size="11">- - - raw TLS = 1.0</text>`)
  const height = y + 24
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, DejaVu Sans, sans-serif">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n')
}
