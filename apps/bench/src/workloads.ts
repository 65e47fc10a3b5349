import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { LinkProxy } from '../../../test-support/link-proxy'
import { LatencyRecorder } from './histogram'
import type { Metrics, PayloadKind, Timing, Workload } from './messages'
import {
  checkStreamChunk,
  freshPayload,
  maybeCorrupt,
  parseSinkSummary,
  payloadTemplate,
  stamp,
  stampOffset,
} from './payloads'
import type { BenchClient, OpenClient, OpenOptions } from './targets/client-target'
import { errorMessage, withTimeout } from './util'

/** Extra time a phase may take past its planned end before it is declared hung. */
const GRACE_MS = 15_000
/** Calls made through the counting proxy to measure bytes per call (after a warmup of the same size / 5). */
const WIRE_CALLS = 200
const STREAM_TIMEOUT_MS = 60_000
const CLOSE_TIMEOUT_MS = 20_000

/** What a workload needs from the process that runs it. */
export interface WorkloadContext {
  open: OpenClient
  port: number
  ca: string
  timing: Timing
  /** Asks the parent for the server process's RSS, in bytes. */
  serverRss(): Promise<number>
  /** The target's name ('raw', 'srpc', 'grpc'), for files a workload writes. */
  target: string
}

/** A workload's numbers, and the reason it failed if it did (the numbers are kept either way). */
export interface Outcome {
  metrics: Metrics
  failure?: string
}

export async function runWorkload(workload: Workload, ctx: WorkloadContext): Promise<Outcome> {
  switch (workload.kind) {
    case 'unary':
      return unary(workload, ctx)
    case 'stream':
      return stream(workload, ctx)
    case 'pingpong':
      return pingPong(workload, ctx)
    case 'oneway':
      return oneWay(workload, ctx)
    case 'fleet':
      return fleet(workload, ctx)
  }
}

interface LoopOptions {
  kind: PayloadKind
  size: number
  inFlight: number
  warmupMs: number
  measureMs: number
  maxOps: number
}

/**
 * The client process's CPU time (user + system, every thread: GC helpers included) over the
 * measured window, per operation. Unlike throughput it does not depend on how much of the core
 * the process got, so it is the steadier number on a shared machine.
 */
class CpuMeter {
  #start: NodeJS.CpuUsage | undefined
  #spent: NodeJS.CpuUsage | undefined

  /** The measured window starts now (later calls are ignored). */
  start(): void {
    this.#start ??= process.cpuUsage()
  }

  /** The measured window ends now (later calls are ignored). */
  stop(): void {
    if (this.#start !== undefined) this.#spent ??= process.cpuUsage(this.#start)
  }

  perOp(ops: number): { clientCpuUsPerOp?: number } {
    const spent = this.#spent
    if (spent === undefined || ops <= 0) return {}
    return { clientCpuUsPerOp: (spent.user + spent.system) / ops }
  }
}

interface LoopResult {
  /** Calls completed in the measured window. */
  ops: number
  seconds: number
  /** Calls issued in all (warmup included). */
  calls: number
  latency: ReturnType<LatencyRecorder['summary']>
  cpu: CpuMeter
}

/**
 * A closed loop of unary echo calls with `inFlight` outstanding: each reply is compared with its
 * request byte for byte, then the slot sends the next one. Calls completing after the warmup
 * and before the stop are measured. Ends at the deadline or after `maxOps` calls.
 */
function closedLoop(client: BenchClient, o: LoopOptions): Promise<LoopResult> {
  return new Promise((resolve, reject) => {
    const offset = stampOffset(o.kind)
    const recorder = new LatencyRecorder()
    const cpu = new CpuMeter()
    const measureStart = performance.now() + o.warmupMs
    const deadline = measureStart + o.measureMs
    let stopAt = -1
    let issued = 0
    let measured = 0
    let active = 0
    let seq = 0
    let failure: Error | undefined
    let settled = false

    const finish = () => {
      if (settled) return
      settled = true
      clearTimeout(watchdog)
      if (failure) return reject(failure)
      resolve({
        ops: measured,
        seconds: Math.max(0, stopAt - measureStart) / 1000,
        calls: issued,
        latency: recorder.summary(),
        cpu,
      })
    }

    interface Slot {
      buf: Buffer
      started: number
      seq: number
      done: (err: Error | undefined, reply: Buffer | undefined) => void
    }
    const issue = (slot: Slot) => {
      slot.seq = seq++
      stamp(slot.buf, offset, slot.seq)
      issued++
      active++
      slot.started = performance.now()
      client.call(slot.buf, slot.done)
    }
    const makeSlot = (): Slot => {
      const slot: Slot = { buf: freshPayload(o.kind, o.size), started: 0, seq: 0, done: () => {} }
      slot.done = (err, reply) => {
        active--
        const now = performance.now()
        if (failure === undefined) {
          if (err) failure = new Error(`call ${slot.seq} failed: ${errorMessage(err)}`)
          else if (reply === undefined || !reply.equals(slot.buf))
            failure = new Error(mismatch(slot.seq, slot.buf, reply))
          else if (now >= measureStart && stopAt < 0) {
            cpu.start()
            measured++
            recorder.recordMs(now - slot.started)
          }
        }
        if (stopAt < 0 && (failure !== undefined || now >= deadline || issued >= o.maxOps)) {
          stopAt = now
          cpu.stop()
        }
        if (stopAt < 0) issue(slot)
        else if (active === 0) finish()
      }
      return slot
    }

    const watchdog = setTimeout(
      () => {
        failure ??= new Error(`${active} calls still unanswered ${GRACE_MS} ms after the planned end`)
        if (stopAt < 0) stopAt = performance.now()
        finish()
      },
      o.warmupMs + o.measureMs + GRACE_MS,
    )
    const slots = Array.from({ length: o.inFlight }, makeSlot)
    for (const slot of slots) {
      if (stopAt >= 0) break
      issue(slot)
    }
  })
}

/** Closes a workload's client within a deadline, so a hung close fails the cell by name. */
function closeClient(client: BenchClient): Promise<void> {
  return withTimeout(client.close(), CLOSE_TIMEOUT_MS, 'closing the client')
}

function mismatch(seq: number, request: Buffer, reply: Buffer | undefined): string {
  if (reply === undefined) return `call ${seq}: no reply`
  if (reply.length !== request.length)
    return `call ${seq}: reply has ${reply.length} bytes, request had ${request.length}`
  let at = 0
  while (at < reply.length && reply[at] === request[at]) at++
  return `call ${seq}: reply differs from the request at byte ${at} (0x${reply[at]?.toString(16)} != 0x${request[at]?.toString(16)})`
}

function openOptions(
  ctx: WorkloadContext,
  rest: Omit<OpenOptions, 'port' | 'ca'>,
  port = ctx.port,
): OpenOptions {
  return { port, ca: ctx.ca, ...rest }
}

async function unary(w: Extract<Workload, { kind: 'unary' }>, ctx: WorkloadContext): Promise<Outcome> {
  const open = { size: w.connections, purpose: 'echo' as const, compression: w.compression }
  const loop = { kind: w.payload, size: w.size, inFlight: w.inFlight }
  // A slow link: everything goes through the rate-limiting proxy, which also counts the bytes.
  const link = w.linkBytesPerSec === undefined ? undefined : new LinkProxy(ctx.port, w.linkBytesPerSec)
  const port = link === undefined ? ctx.port : (await link.start()).port
  let result: LoopResult
  try {
    const client = await ctx.open(openOptions(ctx, open, port))
    try {
      result = await closedLoop(client, { ...loop, ...ctx.timing })
    } finally {
      await closeClient(client)
    }
  } finally {
    await link?.stop()
  }
  const metrics: Metrics = {
    ops: result.ops,
    seconds: result.seconds,
    rate: result.ops / result.seconds,
    mbPerSec: (result.ops * w.size) / result.seconds / 1e6,
    ...result.latency,
    ...result.cpu.perOp(result.ops),
  }
  if (link !== undefined && result.calls > 0) metrics.wireBytesPerCall = (link.up + link.down) / result.calls
  if (w.wireBytes) Object.assign(metrics, await wireBytes(ctx, open, loop))
  return { metrics }
}

/** Bytes per call on the wire, both ways, through a counting proxy (a separate, untimed pass). */
async function wireBytes(
  ctx: WorkloadContext,
  open: Omit<OpenOptions, 'port' | 'ca'>,
  loop: Omit<LoopOptions, 'warmupMs' | 'measureMs' | 'maxOps'>,
): Promise<Partial<Metrics>> {
  const proxy = await new LinkProxy(ctx.port, Number.POSITIVE_INFINITY).start()
  const client = await ctx.open(openOptions(ctx, open, proxy.port))
  try {
    const bounded = { ...loop, warmupMs: 0, measureMs: 60_000 }
    // The first calls carry the connection's setup (settings, window updates); leave them out.
    await closedLoop(client, { ...bounded, maxOps: WIRE_CALLS / 5 })
    const before = { up: proxy.up, down: proxy.down }
    const { calls } = await closedLoop(client, { ...bounded, maxOps: WIRE_CALLS })
    const up = (proxy.up - before.up) / calls
    const down = (proxy.down - before.down) / calls
    return { wireBytesPerCall: up + down, wireBytesUpPerCall: up, wireBytesDownPerCall: down }
  } finally {
    await closeClient(client)
    await proxy.stop()
  }
}

async function stream(w: Extract<Workload, { kind: 'stream' }>, ctx: WorkloadContext): Promise<Outcome> {
  const client = await ctx.open(
    openOptions(ctx, { size: 1, purpose: 'stream', compression: w.compression ?? 'off' }),
  )
  const one = async () => {
    let index = 0
    let wrong: string | undefined
    await withTimeout(
      client.stream(w.count, w.size, (chunk) => {
        wrong ??= checkStreamChunk(chunk, index, w.size)
        index++
      }),
      STREAM_TIMEOUT_MS,
      'stream',
    )
    if (wrong !== undefined) throw new Error(wrong)
    if (index !== w.count) throw new Error(`stream ended after ${index} of ${w.count} chunks`)
  }
  /** Streams one after another until `ms` passed (at least one, at most maxStreams). */
  const phase = async (ms: number) => {
    const started = performance.now()
    let streams = 0
    do {
      await one()
      streams++
    } while (performance.now() - started < ms && streams < w.maxStreams)
    return { streams, seconds: (performance.now() - started) / 1000 }
  }
  try {
    await phase(ctx.timing.warmupMs)
    const cpu = new CpuMeter()
    cpu.start()
    const { streams, seconds } = await phase(ctx.timing.measureMs)
    cpu.stop()
    const chunks = streams * w.count
    return {
      metrics: {
        ops: chunks,
        seconds,
        rate: chunks / seconds,
        mbPerSec: (chunks * w.size) / seconds / 1e6,
        ...cpu.perOp(chunks),
      },
    }
  } finally {
    await closeClient(client)
  }
}

async function pingPong(w: Extract<Workload, { kind: 'pingpong' }>, ctx: WorkloadContext): Promise<Outcome> {
  const client = await ctx.open(openOptions(ctx, { size: 1, purpose: 'echo', compression: 'off' }))
  try {
    const session = await client.openSession('echo')
    const recorder = new LatencyRecorder()
    const buf = freshPayload('binary', w.size)
    const cpu = new CpuMeter()
    const measureStart = performance.now() + ctx.timing.warmupMs
    const deadline = measureStart + ctx.timing.measureMs
    const hardEnd = deadline + GRACE_MS
    let measured = 0
    let now = performance.now()
    for (let seq = 0; seq < ctx.timing.maxOps && now < deadline; seq++) {
      stamp(buf, 0, seq)
      const started = performance.now()
      await session.send(buf)
      const reply = await withTimeout(session.receive(), Math.max(1, hardEnd - started), 'session reply')
      now = performance.now()
      if (reply === undefined || !reply.equals(buf)) throw new Error(mismatch(seq, buf, reply))
      if (now >= measureStart && now < deadline) {
        cpu.start()
        measured++
        recorder.recordMs(now - started)
      }
    }
    cpu.stop()
    session.end()
    const seconds = (Math.min(now, deadline) - measureStart) / 1000
    return {
      metrics: {
        ops: measured,
        seconds,
        rate: measured / seconds,
        ...recorder.summary(),
        ...cpu.perOp(measured),
      },
    }
  } finally {
    await closeClient(client)
  }
}

async function oneWay(w: Extract<Workload, { kind: 'oneway' }>, ctx: WorkloadContext): Promise<Outcome> {
  const client = await ctx.open(openOptions(ctx, { size: 1, purpose: 'echo', compression: 'off' }))
  const template = payloadTemplate('binary', w.size)
  /**
   * One sink session: send for `ms` (bounded by maxMessages), close our half, wait for the
   * server's summary. The rate counts messages the server checked, start to summary.
   */
  const run = async (ms: number, cpu?: CpuMeter) => {
    const session = await client.openSession('sink')
    // The clock and the CPU meter start once the session is open (raw TLS opens a connection).
    cpu?.start()
    const started = performance.now()
    const stop = started + ms
    let sent = 0
    while (sent < w.maxMessages && performance.now() < stop) {
      const message = Buffer.allocUnsafe(w.size)
      template.copy(message)
      stamp(message, 0, sent)
      await session.send(maybeCorrupt(message))
      sent++
    }
    session.end()
    const summary = parseSinkSummary(await withTimeout(session.receive(), GRACE_MS, 'sink summary'))
    const seconds = (performance.now() - started) / 1000
    cpu?.stop()
    if (summary.error !== undefined) throw new Error(`the server found a wrong message: ${summary.error}`)
    if (summary.count !== sent)
      throw new Error(`the server counted ${summary.count} messages, ${sent} were sent`)
    return { sent, seconds }
  }
  try {
    await run(ctx.timing.warmupMs)
    const cpu = new CpuMeter()
    const { sent, seconds } = await run(ctx.timing.measureMs, cpu)
    return {
      metrics: {
        ops: sent,
        seconds,
        rate: sent / seconds,
        mbPerSec: (sent * w.size) / seconds / 1e6,
        ...cpu.perOp(sent),
      },
    }
  } finally {
    await closeClient(client)
  }
}

/**
 * Many idle-ish connections: each makes one 64-byte call per second, spread evenly over the
 * second (open loop: a slow reply does not delay the next call). The server's RSS is read
 * before connecting, once connected, and after the calls, with every connection still open.
 *
 * Besides the p99 of every call, the p99 of the calls issued after the first tenth of the run is
 * reported (informational): at 1,000 calls per second each process's per-call code runs
 * unoptimised for its first ~2,000 calls, and that warm-up, not the steady state, is where most
 * of the slow calls of a 20 s run are (apps/bench/README.md, "g's p99, fifth round").
 * With SRPC_BENCH_TIMELINE=DIR in the environment, every call's issue time (ms after the first
 * was due) and latency (ms) are written to DIR/fleet-<target>-<pid>.json, for a timeline.
 */
async function fleet(w: Extract<Workload, { kind: 'fleet' }>, ctx: WorkloadContext): Promise<Outcome> {
  const size = 64
  const rssBefore = await ctx.serverRss()
  const clients: BenchClient[] = new Array(w.connections)
  let nextToOpen = 0
  const opener = async () => {
    while (nextToOpen < w.connections) {
      const i = nextToOpen++
      clients[i] = await ctx.open(openOptions(ctx, { size: 1, purpose: 'echo', compression: 'off' }))
    }
  }
  try {
    await withTimeout(
      Promise.all(Array.from({ length: Math.min(w.connectConcurrency, w.connections) }, opener)),
      60_000 + w.connections * 50,
      `opening ${w.connections} connections`,
    )
    const rssConnected = await ctx.serverRss()
    const seconds = Math.max(1, Math.round(w.durationMs / 1000))
    const total = w.connections * seconds
    const recorder = new LatencyRecorder()
    const later = new LatencyRecorder()
    const timelineDir = process.env.SRPC_BENCH_TIMELINE
    const timeline: number[] = []
    const template = payloadTemplate('binary', size)
    let completed = 0
    let failed = 0
    let firstFailure: string | undefined
    let wrong: string | undefined
    const begin = performance.now() + 50
    const laterFrom = begin + w.durationMs / 10
    const dueAt = (k: number) =>
      begin + Math.floor(k / w.connections) * 1000 + ((k % w.connections) * 1000) / w.connections
    let next = 0
    const allAnswered = new Promise<void>((resolve) => {
      const issue = (k: number) => {
        const request = Buffer.allocUnsafe(size)
        template.copy(request)
        stamp(request, 0, k)
        const started = performance.now()
        clients[k % w.connections].call(request, (err, reply) => {
          completed++
          if (err) {
            failed++
            firstFailure ??= `call ${k} failed: ${errorMessage(err)}`
          } else if (reply === undefined || !reply.equals(request)) {
            failed++
            wrong ??= mismatch(k, request, reply)
          } else {
            const ms = performance.now() - started
            recorder.recordMs(ms)
            if (started >= laterFrom) later.recordMs(ms)
            if (timelineDir !== undefined) timeline.push(started - begin, ms)
          }
          if (completed === total) resolve()
        })
      }
      const tick = () => {
        const now = performance.now()
        while (next < total && dueAt(next) <= now) issue(next++)
        if (next < total) setTimeout(tick, Math.max(0, Math.min(5, dueAt(next) - performance.now())))
      }
      tick()
    })
    try {
      await withTimeout(allAnswered, w.durationMs + GRACE_MS, 'fleet calls')
    } catch {
      const missing = total - completed
      failed += missing
      firstFailure ??= `${missing} calls unanswered ${GRACE_MS} ms after the last was due`
    }
    const rssAfter = await ctx.serverRss()
    // Calls that answered right (unanswered ones are in `failed` but never in `completed`).
    const ok = recorder.count
    const metrics: Metrics = {
      ops: ok,
      seconds,
      rate: ok / seconds,
      ...recorder.summary(),
      p99LaterUs: later.summary().p99Us,
      failedCalls: failed,
      serverRssBefore: rssBefore,
      serverRssConnected: rssConnected,
      serverRssAfter: rssAfter,
      rssPerConnectionBytes: (rssAfter - rssBefore) / w.connections,
    }
    if (timelineDir !== undefined) writeTimeline(timelineDir, ctx.target, w.connections, timeline)
    const failure = wrong ?? (failed > 0 ? `${failed} of ${total} calls failed (${firstFailure})` : undefined)
    return failure === undefined ? { metrics } : { metrics, failure }
  } finally {
    await withTimeout(
      Promise.all(clients.filter(Boolean).map((c) => c.close().catch(() => {}))),
      20_000,
      'closing connections',
    ).catch(() => {})
  }
}

/** SRPC_BENCH_TIMELINE's file: each call as [issued ms after the first was due, latency ms]. */
function writeTimeline(dir: string, target: string, connections: number, flat: number[]): void {
  const calls: [number, number][] = []
  for (let i = 0; i < flat.length; i += 2) calls.push([round3(flat[i]), round3(flat[i + 1])])
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, `fleet-${target}-${process.pid}.json`),
    JSON.stringify({ target, connections, calls }),
  )
}

const round3 = (ms: number) => Math.round(ms * 1000) / 1000
