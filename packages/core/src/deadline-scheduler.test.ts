import { performance } from 'node:perf_hooks'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DeadlineScheduler } from './deadline-scheduler'

describe('DeadlineScheduler', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0 })
    // The scheduler reads performance.now() from node:perf_hooks, which the fake clock does not
    // replace: tie it to the fake Date so both move together.
    vi.spyOn(performance, 'now').mockImplementation(() => Date.now())
  })

  afterEach(() => {
    vi.useRealTimers()
    vi.restoreAllMocks()
  })

  it('fires deadlines in time order, each when it is due', () => {
    const scheduler = new DeadlineScheduler()
    const fired: string[] = []
    scheduler.schedule(30, () => fired.push('30'))
    scheduler.schedule(10, () => fired.push('10'))
    scheduler.schedule(20, () => fired.push('20'))
    expect(scheduler.size).toBe(3)
    vi.advanceTimersByTime(9)
    expect(fired).toEqual([])
    vi.advanceTimersByTime(1)
    expect(fired).toEqual(['10'])
    vi.advanceTimersByTime(10)
    expect(fired).toEqual(['10', '20'])
    vi.advanceTimersByTime(10)
    expect(fired).toEqual(['10', '20', '30'])
    expect(scheduler.size).toBe(0)
  })

  it('keeps a single timer armed however many deadlines wait', () => {
    const scheduler = new DeadlineScheduler()
    for (let i = 0; i < 100; i++) scheduler.schedule(1000 - i, () => {})
    expect(vi.getTimerCount()).toBe(1)
    vi.advanceTimersByTime(1000)
    expect(scheduler.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('never fires a cancelled deadline, and cancelling twice or cancelling nothing is safe', () => {
    const scheduler = new DeadlineScheduler()
    const fired: string[] = []
    const a = scheduler.schedule(10, () => fired.push('a'))
    scheduler.schedule(20, () => fired.push('b'))
    scheduler.cancel(a)
    scheduler.cancel(a)
    scheduler.cancel(undefined)
    scheduler.cancel(null)
    expect(a.index).toBe(-1)
    expect(scheduler.size).toBe(1)
    vi.advanceTimersByTime(50)
    expect(fired).toEqual(['b'])
  })

  it('touches no timer for deadlines cancelled in time, and fires once for nothing when idle', () => {
    const scheduler = new DeadlineScheduler()
    // A thousand calls in a row, each finishing before its 100 ms timeout, 1 ms apart: the one
    // timer armed by the first is never moved (it would otherwise be re-armed to fire later).
    for (let i = 0; i < 1000; i++) {
      scheduler.cancel(scheduler.schedule(100, () => {}))
      if (i === 0) expect(vi.getTimerCount()).toBe(1)
      vi.advanceTimersByTime(1)
    }
    expect(scheduler.size).toBe(0)
    // It fired at 100 ms for nothing and was not armed again: nothing waits.
    expect(vi.getTimerCount()).toBe(0)
    const live = scheduler.schedule(100, () => {})
    expect(vi.getTimerCount()).toBe(1)
    scheduler.cancel(live)
  })

  it('re-arms for a deadline earlier than the armed one, and fires it on time', () => {
    const scheduler = new DeadlineScheduler()
    const fired: string[] = []
    scheduler.cancel(scheduler.schedule(1000, () => fired.push('cancelled')))
    scheduler.schedule(10, () => fired.push('early'))
    vi.advanceTimersByTime(10)
    expect(fired).toEqual(['early'])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('takes objects that carry their own deadline fields (add), and reuses them after they fire', () => {
    const scheduler = new DeadlineScheduler()
    const fired: number[] = []
    const entry = { at: 0, index: -1, fire: () => fired.push(Date.now()) }
    scheduler.add(entry, 25)
    expect(entry.index).toBe(0)
    expect(entry.at).toBe(25)
    vi.advanceTimersByTime(25)
    expect(fired).toEqual([25])
    expect(entry.index).toBe(-1)
    scheduler.add(entry, 5)
    vi.advanceTimersByTime(5)
    expect(fired).toEqual([25, 30])
    // Added again while scheduled, it moves: one entry in the heap, fired once, at the new time.
    scheduler.add(entry, 10)
    scheduler.add(entry, 20)
    expect(scheduler.size).toBe(1)
    vi.advanceTimersByTime(20)
    expect(fired).toEqual([25, 30, 50])
    expect(scheduler.size).toBe(0)
  })

  it('treats a negative delay as zero', () => {
    const scheduler = new DeadlineScheduler()
    const fire = vi.fn()
    scheduler.schedule(-50, fire)
    vi.advanceTimersByTime(0)
    expect(fire).toHaveBeenCalledTimes(1)
  })

  it('fires thousands of deadlines in order, with a random half cancelled', () => {
    const scheduler = new DeadlineScheduler()
    let seed = 99
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const fired: number[] = []
    const entries = Array.from({ length: 5000 }, (_, i) => {
      const delay = random(10_000)
      return { i, delay, entry: scheduler.schedule(delay, () => fired.push(delay)) }
    })
    const kept = entries.filter(({ entry }) => {
      if (random(2) === 0) {
        scheduler.cancel(entry)
        return false
      }
      return true
    })
    expect(scheduler.size).toBe(kept.length)
    vi.advanceTimersByTime(10_000)
    expect(fired).toEqual(kept.map((k) => k.delay).sort((x, y) => x - y))
    expect(scheduler.size).toBe(0)
  })

  it('takes deadlines scheduled from inside a firing callback, including ones already due', () => {
    const scheduler = new DeadlineScheduler()
    const fired: string[] = []
    scheduler.schedule(10, () => {
      fired.push('first')
      scheduler.schedule(0, () => fired.push('now'))
      scheduler.schedule(15, () => fired.push('later'))
    })
    scheduler.schedule(20, () => fired.push('second'))
    vi.advanceTimersByTime(10)
    expect(fired).toEqual(['first', 'now'])
    vi.advanceTimersByTime(10)
    expect(fired).toEqual(['first', 'now', 'second'])
    vi.advanceTimersByTime(5)
    expect(fired).toEqual(['first', 'now', 'second', 'later'])
    expect(scheduler.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('honours a cancel made by a firing callback for another deadline due at the same time', () => {
    const scheduler = new DeadlineScheduler()
    const fired: string[] = []
    let victim: ReturnType<DeadlineScheduler['schedule']> | undefined
    scheduler.schedule(10, () => {
      fired.push('canceller')
      scheduler.cancel(victim)
    })
    victim = scheduler.schedule(10, () => fired.push('victim'))
    vi.advanceTimersByTime(20)
    expect(fired).toEqual(['canceller'])
  })

  it('re-arms for an earlier deadline scheduled after a later one', () => {
    const scheduler = new DeadlineScheduler()
    const fired: string[] = []
    scheduler.schedule(1000, () => fired.push('late'))
    scheduler.schedule(5, () => fired.push('early'))
    vi.advanceTimersByTime(5)
    expect(fired).toEqual(['early'])
    expect(vi.getTimerCount()).toBe(1)
  })

  it('clear() forgets every deadline and stops its timer: nothing fires, entries can be added again', () => {
    const scheduler = new DeadlineScheduler()
    const fired: string[] = []
    const kept = scheduler.schedule(10, () => fired.push('a'))
    scheduler.schedule(20, () => fired.push('b'))
    scheduler.clear()
    expect(scheduler.size).toBe(0)
    expect(kept.index).toBe(-1)
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(50)
    expect(fired).toEqual([])
    scheduler.add(kept, 5)
    vi.advanceTimersByTime(5)
    expect(fired).toEqual(['a'])
  })
})
