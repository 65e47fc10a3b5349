#!/usr/bin/env node
// Where a g run's slow calls are. Reads the files the bench writes with SRPC_BENCH_TIMELINE=DIR
// (`node apps/bench/dist/main.js --only g …`: one per cell, each call's issue time and latency)
// and prints, per cell, the p50 and p99 of all calls and of those after the first tenth of the
// run, and how many calls took longer than the threshold in each second of the run.
//   node scripts/fleet-timeline.mjs DIR [threshold-ms, default 1]
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2]
const thresholdMs = Number(process.argv[3] ?? 1)
if (dir === undefined || !(thresholdMs > 0)) {
  console.error('usage: node scripts/fleet-timeline.mjs DIR [threshold-ms]')
  process.exit(2)
}

/** The value below which `p` of the sorted values lie (nearest rank). */
const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * p) - 1)]
const us = (ms) => `${Math.round(ms * 1000)} µs`

const files = readdirSync(dir).filter((name) => /^fleet-.*\.json$/.test(name))
if (files.length === 0) {
  console.error(`no fleet-*.json in ${dir}`)
  process.exit(1)
}
for (const name of files.sort()) {
  const { target, calls } = JSON.parse(readFileSync(join(dir, name), 'utf8'))
  if (calls.length === 0) {
    console.log(`${name} (${target}): no call answered`)
    continue
  }
  const runMs = Math.max(...calls.map(([issued]) => issued))
  const all = calls.map(([, ms]) => ms).sort((a, b) => a - b)
  const later = calls
    .filter(([issued]) => issued >= runMs / 10)
    .map(([, ms]) => ms)
    .sort((a, b) => a - b)
  const perSecond = new Array(Math.floor(runMs / 1000) + 1).fill(0)
  for (const [issued, ms] of calls) if (ms > thresholdMs) perSecond[Math.floor(issued / 1000)]++
  console.log(
    `${name} (${target}): ${calls.length} calls; all p50 ${us(percentile(all, 0.5))} p99 ${us(percentile(all, 0.99))}; ` +
      `after the first 10 % p99 ${us(percentile(later, 0.99))}`,
  )
  console.log(`  calls over ${thresholdMs} ms in each second: ${perSecond.join(' ')}`)
}
