import { getEventListeners } from 'node:events'
import { performance } from 'node:perf_hooks'
import { Code, RpcError } from '@srpc/protocol'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type CallPhase, CallState } from './call-state'
import { deadlines } from './deadline-scheduler'

/** A call of either end, reduced to what CallState asks of it; it records what CallState did. */
class TestCall extends CallState {
  readonly stops: RpcError[] = []
  readonly dropped: RpcError[] = []

  constructor(phase: CallPhase, timeoutMs?: number, signal?: AbortSignal) {
    super(phase)
    this.watch(timeoutMs, signal)
  }

  /** As both ends do: tell the peer (not modelled), fail, clean up. */
  protected override stop(error: RpcError): void {
    this.stops.push(error)
    if (this.failCall(error)) this.settle()
  }

  protected override deadlineMessage(): string {
    return 'timed out after 50ms'
  }

  protected override dropHalves(error: RpcError): void {
    this.dropped.push(error)
  }
}

/** A call put in `phase` the way a real one gets there. */
function inPhase(phase: CallPhase): TestCall {
  if (phase === 'failed') {
    const call = new TestCall('open')
    call.failCall(new RpcError(Code.UNAVAILABLE, 'connection closed'))
    return call
  }
  return new TestCall(phase)
}

const boom = new RpcError(Code.INTERNAL, 'boom')

// Every test on fake timers: the deadline scheduler is the process-wide one.
beforeEach(() => {
  vi.useFakeTimers({ now: 0 })
  // The scheduler reads performance.now() from node:perf_hooks: tie it to the fake clock.
  vi.spyOn(performance, 'now').mockImplementation(() => Date.now())
})

afterEach(() => {
  // Let the shared scheduler's timer run out, so the next test starts with none armed.
  vi.runAllTimers()
  vi.useRealTimers()
  vi.restoreAllMocks()
})

describe('CallState transitions', () => {
  // [from, event, to, changed]: the table in call-state.ts, every cell.
  const table: [CallPhase, 'endLocal' | 'endRemote' | 'failCall', CallPhase, boolean][] = [
    ['open', 'endLocal', 'local-ended', true],
    ['open', 'endRemote', 'remote-ended', true],
    ['open', 'failCall', 'failed', true],
    ['local-ended', 'endLocal', 'local-ended', false],
    ['local-ended', 'endRemote', 'closed', true],
    ['local-ended', 'failCall', 'failed', true],
    ['remote-ended', 'endLocal', 'closed', true],
    ['remote-ended', 'endRemote', 'remote-ended', false],
    ['remote-ended', 'failCall', 'failed', true],
    ['closed', 'endLocal', 'closed', false],
    ['closed', 'endRemote', 'closed', false],
    ['closed', 'failCall', 'failed', true],
    ['failed', 'endLocal', 'failed', false],
    ['failed', 'endRemote', 'failed', false],
    ['failed', 'failCall', 'failed', false],
  ]

  it.each(table)('%s --%s--> %s (changed: %s)', (from, event, to, changed) => {
    const call = inPhase(from)
    const result = event === 'failCall' ? call.failCall(boom) : call[event]()
    expect(result).toBe(changed)
    expect(call.phase).toBe(to)
  })

  it('reports which halves are over in every phase', () => {
    const halves = (phase: CallPhase) => {
      const call = inPhase(phase)
      return [call.localEnded, call.remoteEnded, call.ended]
    }
    expect(halves('open')).toEqual([false, false, false])
    expect(halves('local-ended')).toEqual([true, false, false])
    expect(halves('remote-ended')).toEqual([false, true, false])
    expect(halves('closed')).toEqual([true, true, true])
    expect(halves('failed')).toEqual([true, true, true])
  })

  it('keeps the first error: a second failure changes nothing and drops nothing twice', () => {
    const call = new TestCall('open')
    const first = new RpcError(Code.CANCELLED, 'cancelled by the client')
    expect(call.failCall(first)).toBe(true)
    expect(call.failCall(boom)).toBe(false)
    expect(call.error).toBe(first)
    expect(call.dropped).toEqual([first])
  })

  it('has no error unless it failed, also once closed', () => {
    const call = new TestCall('local-ended')
    call.endRemote()
    expect(call.phase).toBe('closed')
    expect(call.error).toBeUndefined()
  })

  it('fails from closed while unsettled (a server handler still running), not after settling', () => {
    const running = new TestCall('closed')
    expect(running.failCall(boom)).toBe(true)
    expect(running.error).toBe(boom)

    const done = new TestCall('closed')
    done.settle()
    expect(done.failCall(boom)).toBe(false)
    expect(done.phase).toBe('closed')
    expect(done.error).toBeUndefined()
    expect(done.dropped).toEqual([])
  })
})

describe('CallState settle', () => {
  it('runs the cleanup exactly once', () => {
    const controller = new AbortController()
    const call = new TestCall('open', 1000, controller.signal)
    const remove = vi.spyOn(controller.signal, 'removeEventListener')
    expect(call.settle()).toBe(true)
    expect(call.settle()).toBe(false)
    expect(call.settled).toBe(true)
    expect(remove).toHaveBeenCalledTimes(1)
    expect(remove).toHaveBeenCalledWith('abort', call)
    expect(call.index).toBe(-1)
  })

  it('leaves the phase alone: settling is not a transition', () => {
    const call = new TestCall('open')
    call.settle()
    expect(call.phase).toBe('open')
  })
})

describe('CallState signal', () => {
  it('creates its AbortSignal on first read and aborts it with the error', () => {
    const call = new TestCall('open')
    const signal = call.signal
    expect(call.signal).toBe(signal)
    expect(signal.aborted).toBe(false)
    call.failCall(boom)
    expect(signal.aborted).toBe(true)
    expect(signal.reason).toBe(boom)
  })

  it('hands out an aborted signal when first read after the failure', () => {
    const call = inPhase('failed')
    expect(call.signal.aborted).toBe(true)
    expect(call.signal.reason).toBe(call.error)
  })

  it('aborts the signal after the halves were dropped', () => {
    const call = new TestCall('open')
    const seen: number[] = []
    call.signal.addEventListener('abort', () => seen.push(call.dropped.length))
    call.failCall(boom)
    expect(seen).toEqual([1])
  })

  it('does not abort its signal when the call closes normally', () => {
    const call = new TestCall('local-ended')
    const signal = call.signal
    call.endRemote()
    call.settle()
    expect(signal.aborted).toBe(false)
  })
})

describe('CallState caller signal', () => {
  it('is its own abort listener, added once', () => {
    const controller = new AbortController()
    const call = new TestCall('open', undefined, controller.signal)
    expect(getEventListeners(controller.signal, 'abort')).toEqual([call])
  })

  it('stops the call with CANCELLED when the caller aborts, the reason as cause', () => {
    const controller = new AbortController()
    const call = new TestCall('open', undefined, controller.signal)
    const reason = new Error('user left')
    controller.abort(reason)
    expect(call.stops).toHaveLength(1)
    expect(call.stops[0].code).toBe(Code.CANCELLED)
    expect(call.stops[0].message).toBe('cancelled by its signal')
    expect(call.stops[0].cause).toBe(reason)
    expect(call.phase).toBe('failed')
  })

  it('removes its listener when the call settles: a later abort does nothing', () => {
    const controller = new AbortController()
    const call = new TestCall('local-ended', undefined, controller.signal)
    call.endRemote()
    call.settle()
    expect(getEventListeners(controller.signal, 'abort')).toEqual([])
    controller.abort()
    expect(call.stops).toEqual([])
    expect(call.phase).toBe('closed')
  })

  it('ignores the signal once the call failed', () => {
    const controller = new AbortController()
    const call = new TestCall('open', undefined, controller.signal)
    call.failCall(boom)
    controller.abort()
    expect(call.stops).toEqual([])
    expect(call.error).toBe(boom)
  })
})

describe('CallState deadline', () => {
  it('is its own deadline entry', () => {
    const call = new TestCall('open', 50)
    expect(call.index).toBeGreaterThanOrEqual(0)
    expect(deadlines.size).toBe(1)
    call.settle()
  })

  it('fires DEADLINE_EXCEEDED once, when due', () => {
    const call = new TestCall('local-ended', 50)
    vi.advanceTimersByTime(49)
    expect(call.stops).toEqual([])
    vi.advanceTimersByTime(1)
    expect(call.stops).toHaveLength(1)
    expect(call.stops[0].code).toBe(Code.DEADLINE_EXCEEDED)
    expect(call.stops[0].message).toBe('timed out after 50ms')
    expect(call.phase).toBe('failed')
    vi.advanceTimersByTime(1000)
    call.fire()
    expect(call.stops).toHaveLength(1)
    expect(deadlines.size).toBe(0)
  })

  it('is cancelled when the call settles', () => {
    const call = new TestCall('local-ended', 50)
    call.endRemote()
    call.settle()
    expect(deadlines.size).toBe(0)
    vi.advanceTimersByTime(100)
    expect(call.stops).toEqual([])
    expect(call.phase).toBe('closed')
  })

  it('is cancelled when the call fails, before it settles', () => {
    const call = new TestCall('remote-ended', 50)
    call.failCall(boom)
    expect(call.index).toBe(-1)
    expect(deadlines.size).toBe(0)
    vi.advanceTimersByTime(100)
    expect(call.stops).toEqual([])
  })

  it('still fires on a closed call that has not settled (its handler is running)', () => {
    const call = new TestCall('remote-ended', 50)
    call.endLocal()
    vi.advanceTimersByTime(50)
    expect(call.stops.map((e) => e.code)).toEqual([Code.DEADLINE_EXCEEDED])
    expect(call.phase).toBe('failed')
  })
})

describe('CallState sendRefusal', () => {
  it('allows sending while our half is open, whatever the peer did', () => {
    expect(new TestCall('open').sendRefusal('closed')).toBeUndefined()
    expect(new TestCall('remote-ended').sendRefusal('closed')).toBeUndefined()
  })

  it('refuses with FAILED_PRECONDITION once our half ended', () => {
    for (const phase of ['local-ended', 'closed'] as const) {
      const refusal = new TestCall(phase).sendRefusal('the stream has ended')
      expect(refusal?.code).toBe(Code.FAILED_PRECONDITION)
      expect(refusal?.message).toBe('the stream has ended')
    }
  })

  it('refuses every later send with the error the call failed with', () => {
    const call = new TestCall('open')
    call.failCall(boom)
    expect(call.sendRefusal('closed')).toBe(boom)
    expect(call.sendRefusal('closed')).toBe(boom)
  })
})
