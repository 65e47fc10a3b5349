import { afterEach, describe, expect, it } from 'vitest'
import { LinkProxy } from '../../../test-support/link-proxy'
import type { Pool } from '../src'
import { Harness } from './harness'

const h = new Harness()
const proxies: LinkProxy[] = []
afterEach(async () => {
  await h.cleanup()
  await Promise.all(proxies.splice(0).map((p) => p.stop()))
})

const KIB = 1024
const MIB = 1024 * KIB

/** JSON-like text of `size` bytes, as an API would send. */
function json(size: number, seed = 1): Buffer {
  const items: string[] = []
  let length = 0
  for (let i = 0; length < size; i++) {
    const item = JSON.stringify({ id: (i * 7919 + seed) % 100000, name: `item-${i % 97}`, ok: i % 3 === 0 })
    items.push(item)
    length += item.length + 1
  }
  return Buffer.from(items.join(',')).subarray(0, size)
}

/** `inFlight` echo calls kept going until `calls` have completed; each reply is checked. */
async function echoLoad(pool: Pool, payload: Buffer, inFlight: number, calls: number): Promise<void> {
  let started = 0
  const worker = async () => {
    while (started < calls) {
      started++
      const reply = await pool.call('/echo', payload, { timeout: 30_000 })
      if (!reply.equals(payload)) throw new Error('echo mismatch')
    }
  }
  await Promise.all(Array.from({ length: inFlight }, worker))
}

describe('adaptive compression (the default)', () => {
  const payload = json(16 * KIB)

  async function wireBytesPerCall(link: { up: number; down: number }, pool: Pool, calls: number) {
    const before = link.up + link.down
    await echoLoad(pool, payload, 16, calls)
    return (link.up + link.down - before) / calls
  }

  it('ends up compressing both ways on a bandwidth-limited link', async () => {
    const { port } = await h.server((s) => s.mux.handle('/echo', (ctx) => ctx.payload))
    const link = await new LinkProxy(port, 1 * MIB).start()
    proxies.push(link)
    const pool = await h.pool(link.address)
    // Uncompressed, 1 MiB/s carries 32 echoes of 16 KiB a second: these take a few windows.
    await echoLoad(pool, payload, 16, 48)
    const perCall = await wireBytesPerCall(link, pool, 200)
    // Both directions compressed: the 2 × 16 KiB of an echo go in well under half.
    expect(perCall).toBeLessThan(payload.length)
  }, 30_000)

  it('does not compress on plain loopback, where the CPU, not the link, is the bottleneck', async () => {
    const { port } = await h.server((s) => s.mux.handle('/echo', (ctx) => ctx.payload))
    // The same proxy, unlimited (1 TB/s): only counts.
    const link = await new LinkProxy(port, 1e12, 1 * MIB).start()
    proxies.push(link)
    const pool = await h.pool(link.address)
    await echoLoad(pool, payload, 16, 400)
    const perCall = await wireBytesPerCall(link, pool, 2000)
    expect(perCall).toBeGreaterThan(2 * payload.length)
  }, 30_000)
})

describe('large compressed messages (zlib thread pool)', () => {
  it('round-trip 16 MiB through a session in order with small ones, while other calls keep being served', async () => {
    const big = Buffer.alloc(16 * MIB - 64 * KIB)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 12)) & 0xff
    const options = { compression: true, maxFrameSize: 32 * MIB }
    const { port } = await h.server((s) => {
      s.mux.handle('/echo', async (ctx) => {
        for await (const m of ctx.messages()) await ctx.sendMessage(m)
      })
      s.mux.handle('/ping', () => 'pong')
    }, options)
    const pool = await h.pool(`127.0.0.1:${port}`, { ...options, size: 1 })
    await pool.call('/ping')
    let pings = 0
    let done = false
    const pinger = (async () => {
      while (!done) {
        expect((await pool.call('/ping', '', { timeout: 30_000 })).toString()).toBe('pong')
        pings++
      }
    })()
    const session = await pool.createBidirectionalSession('/echo', { timeout: 60_000 })
    const pingsBefore = pings
    void session.send(big)
    for (let i = 0; i < 20; i++) void session.send(`small ${i}`)
    const first = await session.receive()
    expect(first?.equals(big)).toBe(true)
    for (let i = 0; i < 20; i++) expect((await session.receive())?.toString()).toBe(`small ${i}`)
    done = true
    await pinger
    await session.close()
    // The same connection kept answering small calls while the 16 MiB value was deflated and inflated.
    expect(pings - pingsBefore).toBeGreaterThan(0)
  }, 60_000)
})
