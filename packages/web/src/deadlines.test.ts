import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type Deadline, DeadlineHeap } from './deadlines'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

function entry(fired: string[], name: string): Deadline {
  return { at: 0, slot: -1, fire: () => fired.push(name) }
}

describe('DeadlineHeap', () => {
  it('fires deadlines in time order, each once, and not the removed ones', () => {
    const heap = new DeadlineHeap()
    const fired: string[] = []
    const late = entry(fired, 'late')
    const early = entry(fired, 'early')
    const gone = entry(fired, 'gone')
    const middle = entry(fired, 'middle')
    heap.add(late, 300)
    heap.add(early, 100)
    heap.add(gone, 150)
    heap.add(middle, 200)
    heap.remove(gone)
    expect(heap.size).toBe(3)
    vi.advanceTimersByTime(99)
    expect(fired).toEqual([])
    vi.advanceTimersByTime(2)
    expect(fired).toEqual(['early'])
    vi.advanceTimersByTime(500)
    expect(fired).toEqual(['early', 'middle', 'late'])
    expect(heap.size).toBe(0)
    expect(gone.slot).toBe(-1)
  })

  it('keeps the heap order through many adds and removes', () => {
    const heap = new DeadlineHeap()
    const fired: number[] = []
    const entries = Array.from({ length: 200 }, (_, i) => ({ at: 0, slot: -1, fire: () => fired.push(i) }))
    for (const [i, e] of entries.entries()) heap.add(e, ((i * 37) % 200) + 1)
    for (let i = 0; i < 200; i += 3) heap.remove(entries[i])
    vi.advanceTimersByTime(1000)
    const expected = entries
      .map((_, i) => i)
      .filter((i) => i % 3 !== 0)
      .sort((a, b) => ((a * 37) % 200) - ((b * 37) % 200))
    expect(fired).toEqual(expected)
    heap.clear()
  })
})
