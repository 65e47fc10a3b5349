import { describe, expect, it } from 'vitest'
import { Compressor, resolveCompressionOptions } from './compression'
import {
  CompressionGovernor,
  GOVERNOR_MAX_BUSY,
  GOVERNOR_MIN_WINDOW_BYTES,
  GOVERNOR_WINDOW_MS,
  type GovernorProbe,
} from './compression-governor'

/** A clock and an event-loop load the test sets by hand. */
function fakeProbe() {
  const probe = { time: 0, load: 0 }
  const read: GovernorProbe = { now: () => probe.time, busy: () => probe.load }
  return { probe, read }
}

/**
 * One window of traffic: `messages` payloads of `size` bytes spread over GOVERNOR_WINDOW_MS, with
 * the event loop `busy` (0–1) meanwhile. Returns how many of them the governor let be compressed.
 */
function window(
  g: CompressionGovernor,
  probe: { time: number; load: number },
  messages: number,
  size: number,
  busy: number,
): number {
  probe.load = busy
  let compressed = 0
  const start = probe.time
  for (let i = 0; i < messages; i++) {
    probe.time = start + (GOVERNOR_WINDOW_MS * (i + 1)) / messages
    if (g.compressing) compressed++
    g.sent(size)
  }
  return compressed
}

/** A governor switched on by two link-bound plain windows of `messages` 16 KiB messages, the loop 10 % busy. */
function switchedOn(messages: number) {
  const { probe, read } = fakeProbe()
  const g = new CompressionGovernor(read)
  window(g, probe, messages, 16_384, 0.1)
  window(g, probe, messages, 16_384, 0.1)
  expect(g.state).toBe('on')
  return { g, probe }
}

/** Runs windows of `messages` while the governor stays on, each wholly compressed; returns how many. */
function windowsWhileOn(
  g: CompressionGovernor,
  probe: { time: number; load: number },
  messages: number,
  size: number,
  busy: number,
): number {
  let windows = 0
  while ((g.state as string) === 'on') {
    expect(window(g, probe, messages, size, busy)).toBe(messages)
    windows++
  }
  return windows
}

describe('CompressionGovernor', () => {
  it('starts off, and stays off while the event loop is busy (the CPU is the bottleneck: a LAN)', () => {
    const { probe, read } = fakeProbe()
    const g = new CompressionGovernor(read)
    expect(g.state).toBe('off')
    // 64 × 4 KiB per 200 ms window, loop 90 % busy: what loopback looks like.
    for (let w = 0; w < 50; w++) expect(window(g, probe, 64, 4096, 0.9)).toBe(0)
    expect(g.switchedOn).toBe(0)
  })

  it('stays off on an idle loop when a window carries too little to be worth it', () => {
    const { probe, read } = fakeProbe()
    const g = new CompressionGovernor(read)
    const size = Math.floor(GOVERNOR_MIN_WINDOW_BYTES / 32) - 1
    for (let w = 0; w < 20; w++) window(g, probe, 32, size, 0.05)
    expect(g.state).toBe('off')
  })

  it('stays off when deflating the messages would take more than half the idle time', () => {
    const { probe, read } = fakeProbe()
    // Measured at 0.05 ms a message: 400 messages per 200 ms would take 10 % of a core, 1,600 take
    // 40 %, more than half of the 60 % the loop is idle.
    const g = new CompressionGovernor(read)
    for (let i = 0; i < 20; i++) g.deflated(0.05)
    for (let w = 0; w < 10; w++) window(g, probe, 1600, 4096, 0.4)
    expect(g.state).toBe('off')
    for (let w = 0; w < 2; w++) window(g, probe, 400, 4096, 0.4)
    expect(g.state).toBe('on')
    // Before any deflate was measured, a guess on the safe side (0.15 ms a message) keeps a busy
    // connection from being tried: 3,000 messages/s of 4 KiB (12 MB/s) with the loop 20 % busy.
    const fresh = new CompressionGovernor(read)
    for (let w = 0; w < 10; w++) window(fresh, probe, 608, 4096, 0.2)
    expect(fresh.state).toBe('off')
  })

  it('counts only messages big enough to be compressed toward the deflate cost', () => {
    const { probe, read } = fakeProbe()
    const g = new CompressionGovernor(read)
    // 3,000 small messages/s plus 40 KiB of large ones per window: the small ones cost nothing.
    for (let w = 0; w < 2; w++) {
      probe.load = 0.2
      const start = probe.time
      for (let i = 0; i < 608; i++) {
        probe.time = start + (GOVERNOR_WINDOW_MS * (i + 1)) / 608
        g.sent(i < 8 ? 5000 : 100, i < 8)
      }
    }
    expect(g.state).toBe('on')
  })

  it('switches on after two windows in which calls flowed but the loop was mostly idle (the link is the bottleneck)', () => {
    const { probe, read } = fakeProbe()
    const g = new CompressionGovernor(read)
    // 10 MB/s: 128 × 16 KiB per 200 ms, loop 10 % busy.
    expect(window(g, probe, 128, 16_384, 0.1)).toBe(0)
    expect(g.state).toBe('off')
    expect(window(g, probe, 128, 16_384, 0.1)).toBe(0)
    expect(g.state).toBe('on')
    expect(g.switchedOn).toBe(1)
    expect(window(g, probe, 128, 16_384, 0.3)).toBe(128)
  })

  it('switches on at the busy limit but not just over it, and only for two windows in a row', () => {
    const { probe, read } = fakeProbe()
    const g = new CompressionGovernor(read)
    window(g, probe, 64, 8192, GOVERNOR_MAX_BUSY)
    window(g, probe, 64, 8192, GOVERNOR_MAX_BUSY + 0.01)
    window(g, probe, 64, 8192, GOVERNOR_MAX_BUSY)
    expect(g.state).toBe('off')
    window(g, probe, 64, 8192, GOVERNOR_MAX_BUSY)
    expect(g.state).toBe('on')
  })

  it('first holds compressed windows to the plain ones that switched it on: no window goes plainly for it', () => {
    const { g, probe } = switchedOn(128)
    // The first look comes after 4 counted windows (the one after the switch is not counted), and
    // finds compressed windows carrying 4.75× the plain ones: every message stays compressed.
    for (let w = 0; w < 5; w++) expect(window(g, probe, 608, 16_384, 0.6)).toBe(608)
    expect(g.state).toBe('on')
    // The next look sends one window plainly. At a 4.75× gain a plain window costs 79 % of one, so
    // it comes after 16 windows (at most 5 % of the throughput), more than the doubling's 8.
    expect(windowsWhileOn(g, probe, 608, 16_384, 0.6)).toBe(17)
    expect(g.state).toBe('recheck')
    expect(window(g, probe, 128, 16_384, 0.1)).toBe(0) // the plain window: slower
    expect(g.state).toBe('on')
    // Then twice as long.
    expect(windowsWhileOn(g, probe, 608, 16_384, 0.6)).toBe(33)
  })

  it('looks again on the doubling schedule when the gain is small', () => {
    const { g, probe } = switchedOn(128)
    for (let w = 0; w < 5; w++) window(g, probe, 144, 16_384, 0.2) // 1.125×: pays, barely
    expect(g.state).toBe('on')
    // A plain window costs 11 % of one here: 3 windows would do, the doubling asks 8.
    expect(windowsWhileOn(g, probe, 144, 16_384, 0.2)).toBe(9)
  })

  it('switches off at the first look when compressed carries less than 1.05× the plain windows before', () => {
    const { g, probe } = switchedOn(336)
    // 352 against 336 plain, a gain of 4.8 %; all of them compressed: no plain window for this look.
    expect(windowsWhileOn(g, probe, 352, 16_384, 0.6)).toBe(5)
    expect(g.state).toBe('off')
  })

  it('switches off at a later look when a plain window does as well as compressed ones (the link got faster)', () => {
    const { g, probe } = switchedOn(128)
    windowsWhileOn(g, probe, 608, 16_384, 0.6)
    expect(g.state).toBe('recheck')
    expect(window(g, probe, 640, 16_384, 0.9)).toBe(0) // plain now carries more
    expect(g.state).toBe('off')
  })

  it('switches off when compressed does no better than plain (a quiet app, a fast link), and holds off', () => {
    const { probe, read } = fakeProbe()
    const g = new CompressionGovernor(read)
    window(g, probe, 96, 4096, 0.05)
    window(g, probe, 96, 4096, 0.05) // on: idle loop, enough traffic
    while (g.state === 'on') window(g, probe, 96, 4096, 0.06)
    expect(g.state).toBe('off')
    // Held off for 5 s (25 windows) although the same conditions recur.
    for (let w = 0; w < 25; w++) {
      window(g, probe, 96, 4096, 0.05)
      expect(g.state).toBe('off')
    }
    window(g, probe, 96, 4096, 0.05)
    window(g, probe, 96, 4096, 0.05)
    expect(g.state).toBe('on')
    expect(g.switchedOn).toBe(2)
  })

  it('costs nothing per message but a counter: the clock is read once per 16 messages', () => {
    let reads = 0
    const g = new CompressionGovernor({
      now: () => {
        reads++
        return 0
      },
      busy: () => 0,
    })
    reads = 0
    for (let i = 0; i < 1600; i++) g.sent(100)
    expect(reads).toBe(100)
  })
})

describe('Compressor with a governor (compression auto)', () => {
  const json = Buffer.from('{"id":1,"name":"alpha-bravo","tags":["x","y"]},'.repeat(400))

  it('sends as it is while the governor is off, and compresses once it is on', () => {
    const { probe, read } = fakeProbe()
    const governor = new CompressionGovernor(read)
    const c = new Compressor('deflate', resolveCompressionOptions(undefined), governor)
    probe.load = 0.05
    let plain = 0
    let out: Buffer | undefined
    while (out === undefined && plain < 1000) {
      probe.time += 10
      out = c.compress(json)
      if (out === undefined) plain++
    }
    // 63 sent as they are; the 32nd and the 64th close two 320 ms windows (the clock is read every 16th).
    expect(plain).toBe(63)
    expect(governor.state).toBe('on')
    expect(out).toBeInstanceOf(Buffer)
    expect(out!.length).toBeLessThan(json.length / 4)
  })
})

describe('Compressor making its governor when first needed', () => {
  it('makes none while every payload is below the threshold, and one for the first that is not', () => {
    const { read } = fakeProbe()
    let made = 0
    const c = new Compressor('deflate', resolveCompressionOptions(undefined), () => {
      made++
      return new CompressionGovernor(read)
    })
    for (let i = 0; i < 100; i++) expect(c.compress(Buffer.alloc(64))).toBeUndefined()
    expect(made).toBe(0)
    expect(c.compress(Buffer.alloc(64 * 1024, 0x61))).toBeUndefined() // the governor starts off
    expect(made).toBe(1)
    expect(c.governor?.state).toBe('off')
    c.compress(Buffer.alloc(64 * 1024, 0x61))
    expect(made).toBe(1)
  })
})
