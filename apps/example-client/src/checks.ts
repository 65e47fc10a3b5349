import { randomUUID } from 'node:crypto'
import type { Pool } from '@srpc/client'
import { type CheckResult, check, expect, formatMs } from './report'

/** Bound on every unary call, ms. */
const CALL_TIMEOUT = 5000
const HEALTH_CALLS = 3
const TIME_TICKS = 10
const CONCURRENT_CALLS = 100

export async function healthChecks(pool: Pool): Promise<CheckResult[]> {
  const results: CheckResult[] = []
  for (let i = 1; i <= HEALTH_CALLS; i++) {
    results.push(
      await check(`health ${i}/${HEALTH_CALLS}`, async () => {
        const reply = (await pool.call('/health', '', { timeout: CALL_TIMEOUT })).toString('utf8')
        const status = (JSON.parse(reply) as { status?: unknown }).status
        expect(status === 'healthy', `expected {"status":"healthy"}, got ${reply}`)
        return reply
      }),
    )
  }
  return results
}

export function echoChecks(pool: Pool): Promise<CheckResult[]> {
  const cases: [name: string, payload: Buffer, shown: string][] = [
    ['echo unicode', Buffer.from('你好世界 🌍', 'utf8'), '"你好世界 🌍"'],
    [
      'echo JSON',
      Buffer.from(JSON.stringify({ id: 42, tags: ['rpc', 'tls'], nested: { ok: true, ratio: 0.75 } })),
      'a JSON document',
    ],
    ['echo binary', Buffer.from(Array.from({ length: 256 }, (_, i) => i)), 'bytes 0x00..0xff'],
    ['echo empty', Buffer.alloc(0), 'an empty payload'],
    ['echo 1 MiB', Buffer.alloc(1024 * 1024, 'srpc'), 'a 1 MiB payload'],
  ]
  return Promise.all(
    cases.map(([name, payload, shown]) =>
      check(name, async () => {
        const reply = await pool.call('/echo', payload, { timeout: CALL_TIMEOUT })
        expect(
          reply.equals(payload),
          `sent ${payload.length} bytes, got ${reply.length} bytes that ${reply.length === payload.length ? 'differ' : 'do not match'}`,
        )
        return `${shown}: ${reply.length} bytes back, identical`
      }),
    ),
  )
}

/** The server sends TIME_TICKS ticks, the last marked last: they must arrive in order and end the stream. */
export async function timeStreamCheck(pool: Pool, tickMs: number): Promise<CheckResult[]> {
  const result = await check('time stream', async () => {
    // The whole stream is bounded: every tick interval plus a generous margin.
    const stream = pool.callStream('/stream/time', '', { timeout: TIME_TICKS * tickMs + 10_000 })
    const arrivals: number[] = []
    let previous = Number.NEGATIVE_INFINITY
    for await (const chunk of stream) {
      arrivals.push(performance.now())
      const expected = arrivals.length
      expect(expected <= TIME_TICKS, `got more than ${TIME_TICKS} ticks`)
      const { tick, time } = JSON.parse(chunk.toString('utf8')) as { tick?: unknown; time?: unknown }
      expect(tick === expected, `tick ${expected} carried tick ${JSON.stringify(tick)}`)
      const at = typeof time === 'string' ? Date.parse(time) : Number.NaN
      expect(!Number.isNaN(at), `tick ${expected} carried time ${JSON.stringify(time)}, not an ISO date`)
      expect(at >= previous, `tick ${expected} went back in time (${time})`)
      previous = at
    }
    const ended = performance.now()
    expect(arrivals.length === TIME_TICKS, `the stream ended after ${arrivals.length} of ${TIME_TICKS} ticks`)
    // The last tick carries the end marker, so the end must not wait for another tick interval.
    const gaps = arrivals.slice(1).map((t, i) => t - arrivals[i])
    const meanGap = gaps.reduce((a, b) => a + b, 0) / gaps.length
    const endDelay = ended - arrivals[TIME_TICKS - 1]
    expect(endDelay < meanGap / 2, `the stream ended ${formatMs(endDelay)} after the last tick, not with it`)
    return `ticks 1..${TIME_TICKS} in order, one every ${formatMs(meanGap)}, tick ${TIME_TICKS} ended the stream`
  })
  return [result]
}

/** Many calls in flight at once over every connection of the pool: each reply must answer its own request. */
export async function concurrencyCheck(pool: Pool): Promise<CheckResult[]> {
  const result = await check(`${CONCURRENT_CALLS} concurrent echoes`, async () => {
    await pool.connect()
    const payloads = Array.from({ length: CONCURRENT_CALLS }, (_, i) => `request ${i} ${randomUUID()}`)
    const replies = await Promise.all(payloads.map((p) => pool.call('/echo', p, { timeout: CALL_TIMEOUT })))
    const mismatched = replies.filter((reply, i) => reply.toString('utf8') !== payloads[i]).length
    expect(mismatched === 0, `${mismatched} of ${CONCURRENT_CALLS} replies did not match their request`)
    const ready = pool.stats().filter((s) => s.state === 'ready').length
    return `${CONCURRENT_CALLS}/${CONCURRENT_CALLS} replies matched their request, over ${ready} connections`
  })
  return [result]
}
