#!/usr/bin/env node
// Does loading more code make a plain TLS writer pay for full GCs? No srpc on the wire: a raw
// `node:tls` server writes 20,000 fresh 64 KiB frames (a new buffer each, as bench d's servers
// make them) to a reader child that discards them, and reports the writer's CPU per frame and the
// mark-compacts it ran (perf_hooks 'gc' entries of kind major). Before writing, the writer imports
// the modules given (`--load=a,b`: paths or package specifiers; none by default), so
// `node scripts/gc-trap.mjs [root] --load=<root>/packages/core/dist/index.js` runs the very same
// TLS code with srpc's connection layer merely loaded. `--reps=N` (default 5) repeats it in fresh
// processes and prints each run and the median.
// The loopback and the reader are this script's own: 127.0.0.1, and both processes end by
// themselves once the frames are written.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { loadavg } from 'node:os'
import { constants, PerformanceObserver } from 'node:perf_hooks'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'

const argv = process.argv.slice(2)
const option = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const positional = argv.filter((a) => !a.startsWith('--'))
const root = positional[0] ?? fileURLToPath(new URL('..', import.meta.url))
const FRAMES = 20_000
const FRAME = 64 * 1024
const PER_TURN = 16
/** Longest a run may take before the script gives up on it (a run takes seconds). */
const RUN_DEADLINE_MS = 120_000

/** The child's first message; rejects if it exits first or takes longer than RUN_DEADLINE_MS. */
function messageFrom(child, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill()
      reject(new Error(`${what}: no answer in ${RUN_DEADLINE_MS} ms`))
    }, RUN_DEADLINE_MS)
    const settle = (fn, value) => {
      clearTimeout(timer)
      child.off('exit', onExit)
      fn(value)
    }
    const onExit = (code) => settle(reject, new Error(`${what} exited with code ${code} before answering`))
    child.once('message', (message) => settle(resolve, message))
    child.once('exit', onExit)
  })
}

if (option('role') === 'reader') {
  const socket = tls.connect({ port: Number(option('port')), host: '127.0.0.1', rejectUnauthorized: false })
  let bytes = 0
  socket.on('data', (data) => {
    bytes += data.length
  })
  socket.on('end', () => {
    process.send({ bytes })
    process.exit(0)
  })
} else if (option('role') === 'writer') {
  // The certificate comes from the parent, so that the writer loads nothing but what --load names.
  const [{ key, cert }] = await once(process, 'message')
  for (const spec of (option('load') ?? '').split(',').filter(Boolean)) await import(spec)
  let majors = 0
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++
  })
  observer.observe({ entryTypes: ['gc'] })
  const server = tls.createServer({ key, cert })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const reader = fork(fileURLToPath(import.meta.url), [
    root,
    '--role=reader',
    `--port=${server.address().port}`,
  ])
  const [socket] = await once(server, 'secureConnection')
  const template = Buffer.alloc(FRAME, 7)
  const majorsBefore = majors
  const cpu = process.cpuUsage()
  const started = performance.now()
  for (let sent = 0; sent < FRAMES; sent += PER_TURN) {
    let ok = true
    for (let i = 0; i < PER_TURN; i++) {
      const frame = Buffer.allocUnsafe(FRAME)
      template.copy(frame)
      ok = socket.write(frame)
    }
    if (!ok) await once(socket, 'drain')
    else await new Promise((resolve) => setImmediate(resolve))
  }
  const used = process.cpuUsage(cpu)
  const ms = performance.now() - started
  socket.end()
  const { bytes } = await messageFrom(reader, 'the reader')
  // Entries reach the observer asynchronously: give the last ones a turn.
  await new Promise((resolve) => setTimeout(resolve, 50))
  observer.disconnect()
  server.close()
  if (bytes < FRAMES * FRAME) throw new Error(`reader got ${bytes} bytes`)
  process.send({
    cpuUsPerFrame: (used.user + used.system) / FRAMES,
    mbPerSec: (FRAMES * FRAME) / ms / 1000,
    markCompacts: majors - majorsBefore,
  })
} else {
  const reps = Number(option('reps') ?? 5)
  const load = option('load') ?? ''
  const { selfSigned } = await import(`${root}/packages/tlsutil/dist/index.js`)
  const { key, cert } = await selfSigned(['127.0.0.1'])
  const runs = []
  for (let rep = 0; rep < reps; rep++) {
    const child = fork(fileURLToPath(import.meta.url), [root, '--role=writer', `--load=${load}`])
    child.send({ key, cert })
    const result = await messageFrom(child, 'the writer')
    await once(child, 'exit')
    runs.push(result)
    console.log(
      `run ${rep + 1}: ${result.cpuUsPerFrame.toFixed(1)} µs CPU/frame, ${result.mbPerSec.toFixed(0)} MB/s, ${result.markCompacts} mark-compacts`,
    )
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]
  console.log(
    `loaded [${load || 'nothing'}]: median ${median(runs.map((r) => r.cpuUsPerFrame)).toFixed(1)} µs CPU/frame, ` +
      `${median(runs.map((r) => r.markCompacts))} mark-compacts (${reps} runs, load average ${loadavg()[0].toFixed(1)})`,
  )
}
