import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { selfSigned } from '@srpc/tlsutil'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Server } from '../src/index'
import { decodeOnce, nextInput, prng, validFrames } from './fuzz-inputs'
import { RawClient } from './raw-client'

/**
 * Fuzzing the decoder and a live server. CI runs a short share; the long run is
 * `npx -y pnpm@10.34.9 fuzz` (SRPC_FUZZ_INPUTS=1000000). SRPC_FUZZ_SEED replays a run;
 * SRPC_FUZZ_UPDATE_CORPUS=1 rewrites the corpus of interesting inputs kept below.
 */
const INPUTS = Number(process.env.SRPC_FUZZ_INPUTS ?? 50_000)
const LIVE_INPUTS = Number(process.env.SRPC_FUZZ_LIVE_INPUTS ?? 1000)
const SEED = Number(process.env.SRPC_FUZZ_SEED ?? Date.now() % 1_000_000)
const CORPUS = new URL('./fuzz-corpus.json', import.meta.url).pathname
const MAX_FRAME = 4096

type Corpus = Record<string, string>
const corpus: Corpus = existsSync(CORPUS) ? JSON.parse(readFileSync(CORPUS, 'utf8')) : {}

describe('decoder fuzz', () => {
  it('replays the corpus of interesting inputs with the same outcomes', () => {
    expect(Object.keys(corpus).length).toBeGreaterThanOrEqual(5)
    for (const [signature, hex] of Object.entries(corpus)) {
      const bytes = Buffer.from(hex, 'hex')
      // Outcomes do not depend on where the input is split.
      for (const split of [0, Math.floor(bytes.length / 2), bytes.length]) {
        expect(decodeOnce(bytes, split, MAX_FRAME)).toBe(signature)
      }
    }
  })

  it(`survives ${INPUTS} random, mutated and truncated inputs (seed ${SEED})`, () => {
    const random = prng(SEED)
    const seeds = validFrames()
    const found: Corpus = {}
    for (let i = 0; i < INPUTS; i++) {
      const { bytes } = nextInput(random, seeds)
      const signature = decodeOnce(bytes, Math.floor(random() * (bytes.length + 1)), MAX_FRAME)
      found[signature] ??= bytes.toString('hex')
    }
    if (process.env.SRPC_FUZZ_UPDATE_CORPUS === '1') {
      writeFileSync(CORPUS, `${JSON.stringify({ ...found, ...corpus }, null, 2)}\n`)
    }
    // Every kind of outcome seen before is still reachable in a run this size.
    expect(Object.keys(found).length).toBeGreaterThan(5)
  })
})

describe('live server fuzz', () => {
  let tls: Awaited<ReturnType<typeof selfSigned>>
  let server: Server
  let port: number
  const clients = new Set<RawClient>()

  beforeAll(async () => {
    tls = await selfSigned(['127.0.0.1'])
    server = new Server({ address: '127.0.0.1:0', tls: tls.serverOptions, maxFrameSize: 64 * 1024 })
    server.mux.handle('/echo', (ctx) => ctx.reply(ctx.payload))
    server.mux.handle('/count', async (ctx) => {
      const stream = ctx.stream()
      for (let i = 0; i < 3; i++) await stream.writeChunk(`${i}`, i === 2)
    })
    server.mux.handle('/chat', async (ctx) => {
      for await (const m of ctx.messages()) await ctx.sendMessage(m)
    })
    ;({ port } = await server.listen())
  })

  afterAll(async () => {
    for (const c of clients) c.close()
    await server.shutdown({ timeout: 200 })
  })

  it(`keeps serving a well-behaved client while ${LIVE_INPUTS} hostile inputs hit it (seed ${SEED})`, async () => {
    const random = prng(SEED + 1)
    const seeds = validFrames()
    const healthy = await RawClient.open(port, tls.ca)
    clients.add(healthy)
    const rssBefore = process.memoryUsage().rss
    let sent = 0
    let probes = 0
    const outcomes = { answered: 0, closed: 0, timeout: 0 }
    const workers = 8
    const perWorker = Math.ceil(LIVE_INPUTS / workers)
    await Promise.all([
      ...Array.from({ length: workers }, async (_, w) => {
        let c: RawClient | undefined
        for (let i = 0; i < perWorker; i++) {
          if (!c || c.socket.destroyed || c.socket.readableEnded) {
            if (c) clients.delete(c)
            c = await RawClient.open(port, tls.ca)
            clients.add(c)
            c.socket.on('error', () => {})
          }
          // The input, then a probe on the same connection: the server must either answer the
          // probe (the input was harmless or refused with an error frame) or close the connection.
          const probeId = 1_000_000_000 + w * 1_000_000 + i
          c.sendRaw(nextInput(random, seeds).bytes)
          c.send(1, probeId, '/echo', 'probe')
          sent++
          const outcome = await c.until(probeId, 300)
          outcomes[outcome]++
          // The input announced more bytes than it sent: the server rightly waits; start afresh.
          if (outcome === 'timeout') c.close()
        }
        c?.close()
      }),
      (async () => {
        // A well-behaved client on its own connection gets every answer meanwhile.
        while (sent < LIVE_INPUTS) {
          probes++
          healthy.send(1, probes, '/echo', `probe ${probes}`)
          const [reply] = await healthy.frames(1)
          expect(reply.value.toString()).toBe(`probe ${probes}`)
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
      })(),
    ])
    expect(sent).toBeGreaterThanOrEqual(LIVE_INPUTS)
    expect(probes).toBeGreaterThan(0)
    // A probe can go unanswered only when an input left a frame open for it to complete (a
    // header announcing a body longer than what followed); the server then waits for more bytes.
    expect(outcomes.answered + outcomes.closed + outcomes.timeout).toBe(sent)
    expect(outcomes.answered).toBeGreaterThan(0)
    expect(outcomes.closed).toBeGreaterThan(0)
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 1024 * 1024)
  }, 120_000)
})
