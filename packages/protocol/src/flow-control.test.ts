import { describe, expect, it } from 'vitest'
import { Code } from './codes'
import {
  DEFAULT_INITIAL_WINDOW,
  DEFAULT_MAX_BUFFERED,
  MESSAGE_OVERHEAD,
  messageCost,
  ReceiveWindow,
  SendWindow,
} from './flow-control'
import { RpcError } from './rpc-error'

describe('message cost', () => {
  it('is the length plus a fixed 64-byte overhead, so empty messages cost credit too', () => {
    expect(MESSAGE_OVERHEAD).toBe(64)
    expect(messageCost(0)).toBe(64)
    expect(messageCost(1000)).toBe(1064)
  })

  it('defaults the window and the send buffer to 1 MiB', () => {
    expect(DEFAULT_INITIAL_WINDOW).toBe(1024 * 1024)
    expect(DEFAULT_MAX_BUFFERED).toBe(1024 * 1024)
  })
})

describe('SendWindow', () => {
  it('lets a message go while credit is positive and subtracts its cost', () => {
    const window = new SendWindow(300)
    expect(window.take(100)).toBe(true)
    expect(window.credit).toBe(200)
    expect(window.take(200)).toBe(true)
    expect(window.credit).toBe(0)
    expect(window.take(1)).toBe(false)
    expect(window.credit).toBe(0)
  })

  it('goes negative by one message, so a message larger than the window still moves', () => {
    const window = new SendWindow(100)
    expect(window.take(1000)).toBe(true)
    expect(window.credit).toBe(-900)
    expect(window.take(1)).toBe(false)
  })

  it('lets messages go again once grants bring the credit above zero', () => {
    const window = new SendWindow(10)
    expect(window.take(50)).toBe(true) // credit -40
    window.grant(40) // credit 0: nothing may go yet
    expect(window.take(1)).toBe(false)
    window.grant(1)
    expect(window.take(30)).toBe(true)
    expect(window.credit).toBe(-29)
  })
})

describe('ReceiveWindow', () => {
  it('accepts what the sender had credit for, including the one message that overshoots', () => {
    const window = new ReceiveWindow(100)
    window.receive(60)
    window.receive(60) // started at 60 < 100: allowed, now 120
    expect(() => window.receive(1)).toThrow(RpcError)
  })

  it('fails a sender that goes past window + granted with PROTOCOL_ERROR', () => {
    const window = new ReceiveWindow(100)
    window.receive(100)
    let thrown: unknown
    try {
      window.receive(64)
    } catch (err) {
      thrown = err
    }
    expect(RpcError.is(thrown, Code.PROTOCOL_ERROR)).toBe(true)
    expect((thrown as RpcError).message).toContain('flow control violated')
  })

  it('batches grants until a quarter of the window can be returned', () => {
    const window = new ReceiveWindow(1000)
    expect(window.consume(100)).toBe(0)
    expect(window.consume(100)).toBe(0)
    expect(window.consume(49)).toBe(0) // 249 < 250
    expect(window.consume(1)).toBe(250)
    expect(window.consume(249)).toBe(0)
    expect(window.consume(300)).toBe(549)
  })

  it('admits more bytes once it has granted them', () => {
    const window = new ReceiveWindow(1000)
    window.receive(1000)
    expect(() => window.receive(1)).toThrow()
    const again = new ReceiveWindow(1000)
    again.receive(1000)
    expect(again.consume(1000)).toBe(1000)
    again.receive(999)
    again.receive(500) // started at 1999 < 2000
    expect(() => again.receive(1)).toThrow()
  })
})

describe('SendWindow and ReceiveWindow together', () => {
  it('never see a violation when the sender keeps to its credit, whatever the message sizes', () => {
    // A deterministic pseudo-random walk: send while allowed, consume some, grant what is due.
    let seed = 12345
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const windowSize = 4096
    const sender = new SendWindow(windowSize)
    const receiver = new ReceiveWindow(windowSize)
    const inFlight: number[] = []
    let sent = 0
    for (let step = 0; step < 20_000; step++) {
      if (random() < 0.6) {
        const cost = messageCost(Math.floor(random() * 3 * windowSize))
        if (sender.take(cost)) {
          receiver.receive(cost)
          inFlight.push(cost)
          sent++
        }
      } else if (inFlight.length > 0) {
        const grant = receiver.consume(inFlight.shift()!)
        if (grant > 0) sender.grant(grant)
      }
    }
    expect(sent).toBeGreaterThan(1000)
  })
})

describe('ReceiveWindow auto-tuning', () => {
  it('doubles the window for a reader that drains its queue, up to maxWindow', () => {
    const w = new ReceiveWindow(1000, 4000)
    w.receive(1000)
    // Consumed everything with nothing left queued: the window was the limit, so it grows.
    expect(w.consume(1000, true)).toBe(2000)
    expect(w.window).toBe(2000)
    w.receive(2000)
    expect(w.consume(2000, true)).toBe(4000)
    expect(w.window).toBe(4000)
    w.receive(4000)
    expect(w.consume(4000, true)).toBe(4000)
    expect(w.window).toBe(4000)
  })

  it('keeps the initial window for a reader with messages still queued', () => {
    const w = new ReceiveWindow(1000, 4000)
    w.receive(600)
    w.receive(400)
    expect(w.consume(600, false)).toBe(600)
    expect(w.window).toBe(1000)
  })

  it('holds the sender to the credit granted so far, grown window included', () => {
    const w = new ReceiveWindow(1000, 4000)
    w.receive(1000)
    expect(w.consume(1000, true)).toBe(2000)
    w.receive(2999) // total 3999 of 3000 allowed: allowed, credit was still positive when sent
    expect(() => w.receive(1)).toThrow(/flow control violated/)
  })
})
