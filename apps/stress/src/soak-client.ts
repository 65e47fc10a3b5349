/**
 * A client process of the soak run. For the whole duration it keeps up, at once:
 * - unary `/ping` calls at a steady rate, each reply checked against its request;
 * - server streams opened one after another, each chunk checked to be 0, 1, … n-1 exactly once
 *   and in order (every fifth stream is cancelled part-way, the rest read to the end);
 * - sessions opened one after another, sequence numbers checked in both directions (the server
 *   checks ours, we check its), every eighth one aborted part-way with an AbortSignal;
 * - short-lived connections: a new Pool, one call, close.
 */
import { Code, Pool, RpcError } from '@srpc/client'
import { clientTlsOptions } from '@srpc/tlsutil'
import { serveParent } from './child'
import { ROUTES, type SampleRequest, type SoakClientSample, type SoakLoad, type SoakResult } from './messages'
import { errorKey, sampleProcess, sleep, startPauseMonitor, tally } from './stats'

const MAX_STREAM_CHUNKS = 400
const MAX_SESSION_MESSAGES = 100
const CANCEL_EVERY_NTH_STREAM = 5
const ABORT_EVERY_NTH_SESSION = 8
/** How long session.close() may wait for the server's end; generous, the machine is loaded. */
const SESSION_CLOSE_TIMEOUT_MS = 10_000

const result: SoakResult = {
  unary: { ok: 0, failed: 0, mismatched: 0 },
  streams: { opened: 0, completed: 0, cancelled: 0, failed: 0, chunks: 0 },
  sessions: { opened: 0, completed: 0, aborted: 0, failed: 0, sent: 0, received: 0 },
  churn: { opened: 0, failed: 0 },
  sequenceErrors: 0,
  firstSequenceError: undefined,
  errors: {},
  firstError: undefined,
}
const pools = new Set<Pool>()

/** Records a lost, repeated or reordered message (`ok` false). */
function check(ok: boolean, what: () => string): void {
  if (ok) return
  result.sequenceErrors++
  result.firstSequenceError ??= what()
}

function unexpected(err: unknown, where: string): void {
  tally(result.errors, errorKey(err))
  result.firstError ??= `${where}: ${err instanceof Error ? err.message : String(err)}`
}

function randomInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1))
}

/**
 * Calls `body(k)` for k = 0, 1, … at `perSecond`, from a random phase, until `endAt`. One at a
 * time: when a body overruns its slot the next starts at once, so a slow server lowers the rate
 * instead of piling up work.
 */
async function paced(perSecond: number, endAt: number, body: (k: number) => Promise<void>): Promise<void> {
  const intervalMs = 1000 / perSecond
  const began = performance.now() + Math.random() * intervalMs
  for (let k = 0; ; k++) {
    const due = began + k * intervalMs
    if (due >= endAt) return
    await sleep(due - performance.now())
    await body(k)
  }
}

async function unaryLoop(job: SoakLoad, pool: Pool, loop: number, endAt: number): Promise<void> {
  await paced(job.unaryRate / job.unaryLoops, endAt, async (k) => {
    const payload = `u:${job.worker}:${loop}:${k}`
    try {
      const reply = await pool.call(ROUTES.ping, payload, { timeout: job.callTimeout })
      if (reply.toString('utf8') === payload) result.unary.ok++
      else {
        // Counted once, as a wrong reply (not also as a lost or reordered message).
        result.unary.mismatched++
        result.firstSequenceError ??= `unary ${payload}: got reply ${reply.toString('utf8').slice(0, 40)}`
      }
    } catch (err) {
      result.unary.failed++
      unexpected(err, `unary ${payload}`)
    }
  })
}

async function streamLoop(job: SoakLoad, pool: Pool, loop: number, endAt: number): Promise<void> {
  await paced(job.streamRate / job.streamLoops, endAt, async (s) => {
    const n = randomInt(1, MAX_STREAM_CHUNKS)
    // Every fifth stream stops part-way: `break` cancels it on the server.
    const stopAfter =
      s % CANCEL_EVERY_NTH_STREAM === CANCEL_EVERY_NTH_STREAM - 1 && n > 1 ? randomInt(1, n - 1) : n
    const name = `stream ${job.worker}:${loop}:${s} (n=${n})`
    result.streams.opened++
    let received = 0
    try {
      for await (const chunk of pool.callStream(ROUTES.count, JSON.stringify({ n }), {
        timeout: job.callTimeout,
      })) {
        const seq = Number(chunk.toString('utf8'))
        check(seq === received, () => `${name}: chunk ${seq} where ${received} was due`)
        received++
        result.streams.chunks++
        if (received === stopAfter && stopAfter < n) break
      }
      if (stopAfter < n) {
        result.streams.cancelled++
        check(received === stopAfter, () => `${name}: ${received} chunks before cancelling at ${stopAfter}`)
      } else {
        check(received === n, () => `${name}: ended after ${received} chunks`)
        result.streams.completed++
      }
    } catch (err) {
      result.streams.failed++
      unexpected(err, name)
    }
  })
}

async function sessionLoop(job: SoakLoad, pool: Pool, loop: number, endAt: number): Promise<void> {
  await paced(job.sessionRate / job.sessionLoops, endAt, async (s) => {
    const m = randomInt(1, MAX_SESSION_MESSAGES)
    const abortAfter =
      s % ABORT_EVERY_NTH_SESSION === ABORT_EVERY_NTH_SESSION - 1 && m > 1 ? randomInt(1, m - 1) : m
    const controller = abortAfter < m ? new AbortController() : undefined
    const name = `session ${job.worker}:${loop}:${s} (m=${m})`
    result.sessions.opened++
    try {
      const session = await pool.createBidirectionalSession(ROUTES.session, {
        timeout: job.callTimeout * 3,
        signal: controller?.signal,
        closeTimeout: SESSION_CLOSE_TIMEOUT_MS,
      })
      // The server answers message k with "k:k" (its own count, then ours) and ends with "end:m".
      const reading = (async () => {
        let received = 0
        let ended = false
        for (;;) {
          const message = await session.receive()
          if (message === undefined) break
          const text = message.toString('utf8')
          if (text.startsWith('end:')) {
            check(!ended && Number(text.slice(4)) === m, () => `${name}: server says "${text}"`)
            ended = true
            continue
          }
          check(
            !ended && text === `${received}:${received}`,
            () => `${name}: got "${text}" as reply ${received}`,
          )
          received++
          result.sessions.received++
        }
        check(ended && received === m, () => `${name}: ${received} replies, end marker ${ended}`)
      })()
      // Unhandled until awaited below: keep it from surfacing as an unhandled rejection meanwhile.
      reading.catch(() => {})
      for (let k = 0; k < m; k++) {
        if (k === abortAfter) controller!.abort()
        await session.send(String(k))
        result.sessions.sent++
      }
      await session.close()
      await reading
      result.sessions.completed++
    } catch (err) {
      if (controller?.signal.aborted && RpcError.is(err, Code.CANCELLED)) result.sessions.aborted++
      else {
        result.sessions.failed++
        unexpected(err, name)
      }
    }
  })
}

async function churnLoop(job: SoakLoad, options: ConstructorParameters<typeof Pool>[0], endAt: number) {
  if (job.churnRate <= 0) return
  await paced(job.churnRate, endAt, async (k) => {
    const pool = new Pool({ ...options, size: 1 })
    pools.add(pool)
    result.churn.opened++
    const payload = `c:${job.worker}:${k}`
    try {
      const reply = await pool.call(ROUTES.ping, payload, { timeout: job.callTimeout })
      check(reply.toString('utf8') === payload, () => `churn ${payload}: wrong reply`)
    } catch (err) {
      result.churn.failed++
      unexpected(err, `churn ${payload}`)
    } finally {
      await pool.close()
      pools.delete(pool)
    }
  })
}

async function soak(job: SoakLoad): Promise<SoakResult> {
  const options = { address: `127.0.0.1:${job.port}`, tls: clientTlsOptions(job.ca) }
  const pool = new Pool({ ...options, size: job.poolSize })
  pools.add(pool)
  await pool.connect()
  const endAt = performance.now() + job.durationMs
  const loops = (count: number, body: (loop: number) => Promise<void>) =>
    Array.from({ length: count }, (_, i) => body(i))
  await Promise.all([
    ...loops(job.unaryRate > 0 ? job.unaryLoops : 0, (i) => unaryLoop(job, pool, i, endAt)),
    ...loops(job.streamRate > 0 ? job.streamLoops : 0, (i) => streamLoop(job, pool, i, endAt)),
    ...loops(job.sessionRate > 0 ? job.sessionLoops : 0, (i) => sessionLoop(job, pool, i, endAt)),
    churnLoop(job, options, endAt),
  ])
  await pool.close()
  pools.delete(pool)
  return result
}

function snapshot(): SoakResult {
  return structuredClone(result)
}

startPauseMonitor()
serveParent(
  {
    soak: (body: SoakLoad) => soak(body),
    sample: async (body: SampleRequest): Promise<SoakClientSample> => ({
      ...(await sampleProcess(body.collect)),
      progress: snapshot(),
    }),
  },
  async () => {
    // Told to stop: fail what is in flight now (close() would let long sessions run on).
    await Promise.all([...pools].map((pool) => pool.destroy()))
  },
)
