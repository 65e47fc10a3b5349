import { Code, ControlKind, decodeControl, FrameDecoder, type RpcError } from '@srpc/protocol'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Keepalive } from './keepalive'

const INTERVAL = 1000
const TIMEOUT = 500

/** A keepalive whose pings and failures are recorded. */
function watched() {
  const sent: Uint8Array[] = []
  const failed: RpcError[] = []
  const keepalive = new Keepalive({
    sendEncoded: (frame) => sent.push(frame),
    destroy: (error) => failed.push(error),
  })
  return { keepalive, sent, failed }
}

function controlKinds(frames: Uint8Array[]): number[] {
  const decoder = new FrameDecoder()
  const kinds: number[] = []
  for (const frame of frames) decoder.push(frame, (f) => kinds.push(decodeControl(f)!.kind))
  return kinds
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('Keepalive', () => {
  it('pings after the interval without hearing the peer, and not before', () => {
    const { keepalive, sent } = watched()
    keepalive.start(INTERVAL, TIMEOUT)
    vi.advanceTimersByTime(INTERVAL - 1)
    expect(sent).toEqual([])
    vi.advanceTimersByTime(1)
    expect(controlKinds(sent)).toEqual([ControlKind.PING])
    keepalive.stop()
  })

  it('fails with UNAVAILABLE when nothing answers within the timeout', () => {
    const { keepalive, failed } = watched()
    keepalive.start(INTERVAL, TIMEOUT)
    vi.advanceTimersByTime(INTERVAL + TIMEOUT - 1)
    expect(failed).toEqual([])
    vi.advanceTimersByTime(1)
    expect(failed.map((e) => e.code)).toEqual([Code.UNAVAILABLE])
    expect(failed[0].message).toBe('no answer to a keepalive ping within 500 ms')
    expect(keepalive.running).toBe(false)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('stays up while the peer answers its pings', () => {
    const { keepalive, sent, failed } = watched()
    keepalive.start(INTERVAL, TIMEOUT)
    for (let i = 0; i < 5; i++) {
      vi.advanceTimersByTime(INTERVAL)
      expect(sent).toHaveLength(i + 1)
      vi.advanceTimersByTime(TIMEOUT - 1)
      keepalive.heard() // the PONG
      vi.advanceTimersByTime(1)
    }
    expect(failed).toEqual([])
    expect(keepalive.running).toBe(true)
    keepalive.stop()
  })

  it('sends no ping while data keeps arriving', () => {
    const { keepalive, sent, failed } = watched()
    keepalive.start(INTERVAL, TIMEOUT)
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(INTERVAL / 2)
      keepalive.heard()
    }
    expect(sent).toEqual([])
    expect(failed).toEqual([])
    keepalive.stop()
  })

  it('leaves one timer when started twice, with the later values', () => {
    const { keepalive, sent } = watched()
    keepalive.start(INTERVAL, TIMEOUT)
    keepalive.start(2 * INTERVAL, TIMEOUT)
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(INTERVAL)
    expect(sent).toEqual([])
    vi.advanceTimersByTime(INTERVAL)
    expect(sent).toHaveLength(1)
    expect(vi.getTimerCount()).toBe(1)
    keepalive.stop()
  })

  it('leaves no timer once stopped, before or after its ping', () => {
    const { keepalive, sent, failed } = watched()
    keepalive.start(INTERVAL, TIMEOUT)
    keepalive.stop()
    expect(vi.getTimerCount()).toBe(0)
    keepalive.start(INTERVAL, TIMEOUT)
    vi.advanceTimersByTime(INTERVAL)
    expect(sent).toHaveLength(1)
    keepalive.stop()
    expect(vi.getTimerCount()).toBe(0)
    expect(keepalive.running).toBe(false)
    vi.advanceTimersByTime(10 * INTERVAL)
    expect(sent).toHaveLength(1)
    expect(failed).toEqual([])
  })

  it('leaves no timer when the ping itself stops it (the send closed the connection)', () => {
    const failed: RpcError[] = []
    const keepalive: Keepalive = new Keepalive({
      sendEncoded: () => keepalive.stop(),
      destroy: (e) => failed.push(e),
    })
    keepalive.start(INTERVAL, TIMEOUT)
    vi.advanceTimersByTime(INTERVAL)
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(10 * INTERVAL)
    expect(failed).toEqual([])
  })
})
