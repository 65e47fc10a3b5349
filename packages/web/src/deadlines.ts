/** Something with a deadline; a call implements it itself, so scheduling allocates nothing. */
export interface Deadline {
  /** performance.now() time at which it fires, whole ms; set by the heap. */
  at: number
  /** Position in the heap; -1 when not scheduled. */
  slot: number
  fire(): void
}

/**
 * All of a client's deadlines on one timer: a binary min-heap by time, with one `setTimeout`
 * armed for the earliest. Adding a deadline later than the others (one timeout for every call,
 * the usual case) is O(1), removing one O(log n), and a call that finishes in time touches no
 * timer: the timer only moves when an earlier deadline arrives, and fires once for nothing when
 * the heap emptied. Bounded by the calls in flight: a finished call leaves the heap at once.
 */
export class DeadlineHeap {
  #heap: Deadline[] = []
  #timer: ReturnType<typeof setTimeout> | undefined
  #armedAt = Number.POSITIVE_INFINITY

  get size(): number {
    return this.#heap.length
  }

  add(entry: Deadline, delayMs: number): void {
    if (entry.slot >= 0) this.remove(entry)
    entry.at = Math.ceil(performance.now() + Math.max(0, delayMs))
    entry.slot = this.#heap.length
    this.#heap.push(entry)
    this.#up(entry.slot)
    if (entry.at < this.#armedAt) this.#arm()
  }

  remove(entry: Deadline): void {
    const i = entry.slot
    if (i < 0) return
    entry.slot = -1
    const last = this.#heap.pop()!
    if (last === entry) return
    this.#heap[i] = last
    last.slot = i
    this.#down(i)
    this.#up(last.slot)
  }

  /** Drops every deadline and the timer (the client closed). */
  clear(): void {
    for (const entry of this.#heap) entry.slot = -1
    this.#heap = []
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#armedAt = Number.POSITIVE_INFINITY
  }

  #arm(): void {
    clearTimeout(this.#timer)
    const first = this.#heap[0]
    if (first === undefined) {
      this.#timer = undefined
      this.#armedAt = Number.POSITIVE_INFINITY
      return
    }
    this.#armedAt = first.at
    this.#timer = setTimeout(this.#run, Math.max(0, first.at - performance.now()))
    // Deadlines never keep a Node process alive on their own; the sockets they belong to do.
    ;(this.#timer as { unref?: () => void }).unref?.()
  }

  #run = (): void => {
    this.#timer = undefined
    this.#armedAt = Number.POSITIVE_INFINITY
    const now = performance.now()
    // Bounded: each turn removes one entry, and fire() of one call adds none.
    while (this.#heap.length > 0 && this.#heap[0].at <= now) {
      const entry = this.#heap[0]
      this.remove(entry)
      entry.fire()
    }
    this.#arm()
  }

  #up(i: number): void {
    const heap = this.#heap
    const entry = heap[i]
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent].at <= entry.at) break
      heap[i] = heap[parent]
      heap[i].slot = i
      i = parent
    }
    heap[i] = entry
    entry.slot = i
  }

  #down(i: number): void {
    const heap = this.#heap
    const entry = heap[i]
    const n = heap.length
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) break
      if (child + 1 < n && heap[child + 1].at < heap[child].at) child++
      if (heap[child].at >= entry.at) break
      heap[i] = heap[child]
      heap[i].slot = i
      i = child
    }
    heap[i] = entry
    entry.slot = i
  }
}
