import { afterEach, describe, expect, it } from 'vitest'
import { Harness } from './harness'

const h = new Harness()
afterEach(() => h.cleanup())

describe('smoke', () => {
  it('does a call, a stream and a session', async () => {
    const { address } = await h.server((s) => {
      s.mux.handle('/health', (ctx) => ctx.reply('{"status":"healthy"}'))
      s.mux.handle('/stream', async (ctx) => {
        const st = ctx.stream()
        for (let i = 0; i < 3; i++) await st.writeChunk(`c${i}`, i === 2)
      })
      s.mux.handle('/chat', async (ctx) => {
        for await (const m of ctx.messages()) await ctx.sendMessage(`echo:${m}`)
      })
    })
    const pool = await h.pool(address, { size: 2 })
    expect((await pool.call('/health', '', { timeout: 2000 })).toString()).toBe('{"status":"healthy"}')
    const chunks: string[] = []
    for await (const c of pool.callStream('/stream')) chunks.push(c.toString())
    expect(chunks).toEqual(['c0', 'c1', 'c2'])
    const session = await pool.createBidirectionalSession('/chat')
    await session.send('a')
    await session.send('b')
    expect((await session.receive())?.toString()).toBe('echo:a')
    expect((await session.receive())?.toString()).toBe('echo:b')
    await session.close()
    expect(await session.receive()).toBeUndefined()
  })
})
