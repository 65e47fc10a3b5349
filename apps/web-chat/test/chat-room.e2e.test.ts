import { Pool } from '@srpc/client'
import { createClient } from '@srpc/contract'
import { type SelfSignedResult, selfSigned } from '@srpc/tlsutil'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ChatContract } from '../src/chat-contract'
import { type ChatServer, startChatServer } from '../src/chat-server'

let tls: SelfSignedResult
const pools: Pool[] = []
let chat: ChatServer | undefined

beforeAll(async () => {
  tls = await selfSigned(['127.0.0.1'])
})
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()))
  await chat?.server.destroy()
  chat = undefined
})

function poolWith(initialWindow?: number): Pool {
  const pool = new Pool({ address: `127.0.0.1:${chat!.tlsPort}`, tls: tls.clientOptions, initialWindow })
  pools.push(pool)
  return pool
}

function member(name: string) {
  return createClient(poolWith(), ChatContract).join({ metadata: { name } })
}

describe('the chat room', () => {
  it('skips a member that stops reading instead of stalling the room', async () => {
    chat = await startChatServer({
      tls: tls.serverOptions,
      webAddress: '127.0.0.1:0',
      tlsAddress: '127.0.0.1:0',
    })
    // The slow member never reads: a raw session on the same route, so its queue can be counted.
    const slow = await poolWith(16 * 1024).createBidirectionalSession('/chat/join', {
      metadata: { name: 'slow' },
    })
    const fast = await member('fast')
    const talker = await member('talker')
    await expect.poll(() => chat!.room.size).toBe(3)
    const line = 'x'.repeat(1000)
    const started = Date.now()
    for (let i = 0; i < 300; i++) await talker.send({ text: `${i} ${line}` })
    const got: number[] = []
    for await (const { from, text } of fast) {
      if (from === 'talker') got.push(Number(text.split(' ')[0]))
      if (got.length === 300) break
    }
    expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i))
    expect(Date.now() - started).toBeLessThan(10_000)
    // The slow member got what fit its window and the room's allowance, then was skipped.
    expect(chat.room.skipped).toBeGreaterThan(100)
    let slowGot = 0
    while (slow.tryReceive() !== undefined) slowGot++
    expect(slowGot).toBeLessThan(300)
  })
})
