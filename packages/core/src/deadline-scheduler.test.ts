import { performance } from 'node:perf_hooks'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type Deadline, DeadlineScheduler } from './deadline-scheduler'

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

  describe('loose deadlines (addLoose)', () => {
    const entry = (fired: string[], name: string): Deadline => ({
      at: 0,
      index: -1,
      fire: () => fired.push(name),
    })

    it('fire never early and at most a second late, in the order they were added', () => {
      const scheduler = new DeadlineScheduler()
      const fired: string[] = []
      scheduler.addLoose(entry(fired, 'a'), 60_000) // the first reads the clock: exact
      vi.advanceTimersByTime(400)
      scheduler.addLoose(entry(fired, 'b'), 60_000)
      vi.advanceTimersByTime(700) // the stamp at 1,000 ms gave b its time, 600 ms after it was added
      scheduler.addLoose(entry(fired, 'c'), 60_000) // at 1,100 ms: stamped at 2,000
      expect(scheduler.size).toBe(3)
      vi.advanceTimersByTime(60_000 - 1_100 - 1) // 1 ms before a is due
      expect(fired).toEqual([])
      vi.advanceTimersByTime(1)
      expect(fired).toEqual(['a'])
      vi.advanceTimersByTime(299) // b was added at 400 ms: due at 60,400, stamped for 61,000
      expect(fired).toEqual(['a'])
      vi.advanceTimersByTime(1_100 - 299)
      expect(fired).toEqual(['a', 'b'])
      vi.advanceTimersByTime(1_000)
      expect(fired).toEqual(['a', 'b', 'c'])
      expect(scheduler.size).toBe(0)
      expect(vi.getTimerCount()).toBe(0)
    })

    it('unlink cancelled deadlines anywhere in a queue; the others still fire', () => {
      const scheduler = new DeadlineScheduler()
      const fired: string[] = []
      const entries = ['a', 'b', 'c', 'd', 'e'].map((name) => entry(fired, name))
      for (const e of entries) scheduler.addLoose(e, 30_000)
      scheduler.cancel(entries[0])
      scheduler.cancel(entries[2])
      scheduler.cancel(entries[4])
      scheduler.cancel(entries[4])
      expect(entries[2].index).toBe(-1)
      expect(scheduler.size).toBe(2)
      vi.advanceTimersByTime(32_000)
      expect(fired).toEqual(['b', 'd'])
      // A cancelled entry can be added again, loose or exact.
      scheduler.addLoose(entries[0], 30_000)
      scheduler.add(entries[2], 5)
      scheduler.add(entries[0], 10) // moves it out of its queue
      vi.advanceTimersByTime(40_000)
      expect(fired).toEqual(['b', 'd', 'c', 'a'])
      expect(scheduler.size).toBe(0)
    })

    it('read the clock once per stamp, not per deadline', () => {
      const scheduler = new DeadlineScheduler()
      const fired: string[] = []
      scheduler.addLoose(entry(fired, 'first'), 60_000)
      // The clock the scheduler reads (the fake timers' performance, not node:perf_hooks').
      const clock = vi.spyOn(globalThis.performance, 'now')
      for (let i = 0; i < 1000; i++) {
        const e = entry(fired, `${i}`)
        scheduler.addLoose(e, 60_000)
        if (i % 2 === 0) scheduler.cancel(e)
      }
      expect(clock).not.toHaveBeenCalled()
      expect(scheduler.size).toBe(501)
      expect(vi.getTimerCount()).toBe(1)
    })

    it('take short delays, and more distinct delays than it keeps queues for, exactly', () => {
      const scheduler = new DeadlineScheduler()
      const fired: string[] = []
      scheduler.addLoose(entry(fired, 'short'), 50)
      for (let i = 0; i < 5; i++) scheduler.addLoose(entry(fired, `d${i}`), 20_000 + i)
      vi.advanceTimersByTime(50)
      expect(fired).toEqual(['short'])
      vi.advanceTimersByTime(20_004 - 50)
      // The fifth delay went to the heap: on time; so did d0, the first loose one (its clock read
      // starts the stamps); d1 to d3 were stamped a second after they were added.
      expect(fired).toEqual(['short', 'd0', 'd4'])
      vi.advanceTimersByTime(1_000)
      expect(fired).toEqual(['short', 'd0', 'd4', 'd1', 'd2', 'd3'])
    })

    it('clear() forgets loose deadlines too', () => {
      const scheduler = new DeadlineScheduler()
      const fired: string[] = []
      const e = entry(fired, 'a')
      scheduler.addLoose(e, 20_000)
      scheduler.addLoose(entry(fired, 'b'), 20_000)
      scheduler.clear()
      expect(e.index).toBe(-1)
      expect(scheduler.size).toBe(0)
      expect(vi.getTimerCount()).toBe(0)
      vi.advanceTimersByTime(30_000)
      expect(fired).toEqual([])
    })
  })
})
