import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it, vi } from 'vitest'
import { MessageQueue } from './message-queue'

const msg = (text: string) => Buffer.from(text)
const texts = (items: Array<Buffer | undefined>) => items.map((b) => b?.toString())

describe('MessageQueue order and reads', () => {
  it('hands out messages in arrival order through next and tryNext', async () => {
    const queue = new MessageQueue()
    for (const t of ['a', 'bb', 'ccc']) queue.push(msg(t))
    expect(queue.length).toBe(3)
    expect(queue.bytes).toBe(6)
    expect(queue.tryNext()?.toString()).toBe('a')
    expect((await queue.next())?.toString()).toBe('bb')
    expect(queue.tryNext()?.toString()).toBe('ccc')
    expect(queue.tryNext()).toBeUndefined()
    expect(queue.length).toBe(0)
    expect(queue.bytes).toBe(0)
  })

  it('serves readers that wait first come, first served', async () => {
    const queue = new MessageQueue()
    const reads = [queue.next(), queue.next(), queue.next()]
    queue.push(msg('1'))
    queue.push(msg('2'))
    queue.end()
    expect(texts(await Promise.all(reads))).toEqual(['1', '2', undefined])
  })

  it('keeps order across thousands of messages read while more arrive', async () => {
    const queue = new MessageQueue()
    const seen: number[] = []
    let pushed = 0
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 3000; i++) queue.push(Buffer.from(String(pushed++)))
      for (let i = 0; i < 2000; i++) seen.push(Number(queue.tryNext()!.toString()))
    }
    queue.end()
    for await (const m of queue) seen.push(Number(m.toString()))
    expect(seen).toEqual(Array.from({ length: pushed }, (_, i) => i))
  })

  it('iterates with for await until the end', async () => {
    const queue = new MessageQueue()
    queue.push(msg('x'))
    setImmediate(() => {
      queue.push(msg('y'))
      queue.end()
    })
    const out: string[] = []
    for await (const m of queue) out.push(m.toString())
    expect(out).toEqual(['x', 'y'])
  })
})

describe('MessageQueue end and fail', () => {
  it('end keeps queued messages readable, then reads give undefined', async () => {
    const queue = new MessageQueue()
    queue.push(msg('last'))
    queue.end()
    expect(queue.closed).toBe(true)
    expect((await queue.next())?.toString()).toBe('last')
    expect(await queue.next()).toBeUndefined()
    expect(queue.tryNext()).toBeUndefined()
  })

  it('ignores pushes after end or fail', () => {
    const ended = new MessageQueue()
    ended.end()
    ended.push(msg('late'))
    expect(ended.length).toBe(0)
    const failed = new MessageQueue()
    failed.fail(new RpcError(Code.CANCELLED, 'cancelled'))
    failed.push(msg('late'))
    expect(failed.length).toBe(0)
  })

  it('fail drops queued messages and rejects waiting and later reads with the error', async () => {
    const waiting = new MessageQueue()
    const read = waiting.next()
    const error = new RpcError(Code.UNAVAILABLE, 'connection lost')
    waiting.fail(error)
    await expect(read).rejects.toBe(error)

    const queue = new MessageQueue()
    queue.push(msg('dropped'))
    queue.fail(error)
    expect(queue.length).toBe(0)
    expect(queue.bytes).toBe(0)
    await expect(queue.next()).rejects.toBe(error)
    expect(() => queue.tryNext()).toThrow(error)
    queue.fail(new RpcError(Code.INTERNAL, 'second'))
    await expect(queue.next()).rejects.toBe(error)
  })

  it('fail with keepQueued hands out what arrived first, then the error, granting no more credit', async () => {
    const consumed: string[] = []
    const queue = new MessageQueue({ onConsume: (m) => consumed.push(m.toString()) })
    queue.push(msg('a'))
    queue.push(msg('b'))
    expect(queue.tryNext()?.toString()).toBe('a')
    const error = new RpcError(Code.UNAVAILABLE, 'connection lost')
    queue.fail(error, { keepQueued: true })
    queue.push(msg('late'))
    expect(queue.length).toBe(1)
    expect((await queue.next())?.toString()).toBe('b')
    await expect(queue.next()).rejects.toBe(error)
    expect(() => queue.tryNext()).toThrow(error)
    expect(queue.bytes).toBe(0)
    expect(consumed).toEqual(['a'])
  })

  it('an iterator left early is done for good, while a new loop reads on where it stopped', async () => {
    const queue = new MessageQueue()
    for (const m of ['a', 'b', 'c']) queue.push(msg(m))
    const iterator = queue[Symbol.asyncIterator]()
    expect(await iterator.next()).toEqual({ done: false, value: msg('a') })
    expect(await iterator.return?.()).toEqual({ done: true, value: undefined })
    expect(await iterator.next()).toEqual({ done: true, value: undefined })
    const rest: string[] = []
    const loop = (async () => {
      for await (const m of queue) rest.push(m.toString())
    })()
    await new Promise((resolve) => setImmediate(resolve))
    queue.push(msg('d'))
    queue.end()
    await loop
    expect(rest).toEqual(['b', 'c', 'd'])
  })

  it('makes a for await loop throw the error', async () => {
    const queue = new MessageQueue()
    queue.push(msg('ok'))
    const seen: string[] = []
    const loop = (async () => {
      for await (const m of queue) {
        seen.push(m.toString())
        queue.fail(new RpcError(Code.CANCELLED, 'stop'))
      }
    })()
    await expect(loop).rejects.toMatchObject({ code: Code.CANCELLED, message: 'stop' })
    expect(seen).toEqual(['ok'])
  })
})

describe('MessageQueue high-water mark and consume hook', () => {
  it('calls onOverflow once past the mark and onDrained once back at half of it', () => {
    const onOverflow = vi.fn()
    const onDrained = vi.fn()
    const queue = new MessageQueue({ highWaterMark: 100, onOverflow, onDrained })
    queue.push(Buffer.alloc(60))
    queue.push(Buffer.alloc(40)) // 100: not past the mark
    expect(onOverflow).not.toHaveBeenCalled()
    queue.push(Buffer.alloc(30)) // 130
    queue.push(Buffer.alloc(30)) // 160: still one overflow
    expect(onOverflow).toHaveBeenCalledTimes(1)
    queue.tryNext() // 100
    queue.tryNext() // 60
    expect(onDrained).not.toHaveBeenCalled()
    queue.tryNext() // 30 <= 50
    expect(onDrained).toHaveBeenCalledTimes(1)
    queue.push(Buffer.alloc(200))
    expect(onOverflow).toHaveBeenCalledTimes(2)
  })

  it('calls onDrained when a queue over its mark fails, so reading resumes', () => {
    const onDrained = vi.fn()
    const queue = new MessageQueue({ highWaterMark: 10, onOverflow: () => {}, onDrained })
    queue.push(Buffer.alloc(11))
    queue.fail(new RpcError(Code.CANCELLED, 'cancelled'))
    expect(onDrained).toHaveBeenCalledTimes(1)
    const calm = new MessageQueue({ highWaterMark: 10, onDrained })
    calm.fail(new RpcError(Code.CANCELLED, 'cancelled'))
    expect(onDrained).toHaveBeenCalledTimes(1)
  })

  it('calls onConsume for every message the application takes, however it takes it', async () => {
    const consumed: string[] = []
    const queue = new MessageQueue({ onConsume: (m) => consumed.push(m.toString()) })
    const waiting = queue.next()
    queue.push(msg('to-waiter'))
    await waiting
    queue.push(msg('queued-1'))
    queue.push(msg('queued-2'))
    expect(consumed).toEqual(['to-waiter'])
    await queue.next()
    queue.tryNext()
    expect(consumed).toEqual(['to-waiter', 'queued-1', 'queued-2'])
  })

  it('does not count a message handed straight to a waiting reader against the mark', () => {
    const onOverflow = vi.fn()
    const queue = new MessageQueue({ highWaterMark: 10, onOverflow })
    void queue.next()
    queue.push(Buffer.alloc(100))
    expect(queue.bytes).toBe(0)
    expect(onOverflow).not.toHaveBeenCalled()
  })
})
