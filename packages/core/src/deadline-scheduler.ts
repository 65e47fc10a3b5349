/**
 * Something with a deadline. A hot object (a unary call) implements it itself and is added with
 * `add`, so scheduling it allocates nothing; `schedule` wraps a plain callback.
 */
export interface Deadline {
  /** performance.now() time at which it fires; set by the scheduler. */
  at: number
  /** Position in the heap; -1 when not scheduled (never added, fired or cancelled). */
  index: number
  /** Called once when the time comes, unless cancelled first. */
  fire(): void
}

/**
 * One timer for any number of deadlines: a binary min-heap ordered by time, with a single
 * `setTimeout` armed for the earliest. Adding and cancelling are O(log n) (adding a deadline
 * later than all others, the usual case with one timeout for every call, is O(1)) and touch no
 * timer: the timer is moved only when a deadline earlier than the armed time arrives, and is left
 * running when the heap empties (it then fires once for nothing). So a call that finishes in
 * time costs no timer operation at all. The timer is unref'd: deadlines never keep the process
 * alive on their own (the sockets they belong to do). Browser-safe (no `node:` import): the web
 * client uses it through `@srpc/core/portable`.
 */
export class DeadlineScheduler {
  #heap: Deadline[] = []
  #timer: ReturnType<typeof setTimeout> | null = null
  #armedAt = Number.POSITIVE_INFINITY
  #onTimer = () => this.#run()

  get size(): number {
    return this.#heap.length
  }

  /** Calls `fire` once, `delayMs` from now, unless cancelled first. */
  schedule(delayMs: number, fire: () => void): Deadline {
    const entry: Deadline = { at: 0, index: -1, fire }
    this.add(entry, delayMs)
    return entry
  }

  /** Calls `entry.fire()` once, `delayMs` from now, unless cancelled first; an entry already scheduled moves. */
  add(entry: Deadline, delayMs: number): void {
    if (entry.index >= 0) this.cancel(entry)
    // Whole milliseconds (timers are not more precise): a small integer is stored in the entry
    // itself, where a fraction would need a heap number per deadline.
    entry.at = Math.ceil(performance.now() + Math.max(0, delayMs))
    entry.index = this.#heap.length
    this.#heap.push(entry)
    this.#up(entry.index)
    if (entry.at < this.#armedAt) this.#arm()
  }

  cancel(entry: Deadline | undefined | null): void {
    if (!entry || entry.index < 0) return
    const i = entry.index
    const last = this.#heap.pop()!
    entry.index = -1
    if (last !== entry) {
      this.#heap[i] = last
      last.index = i
      this.#down(i)
      this.#up(last.index)
    }
  }

  /** Forgets every deadline (none fires) and stops the timer: for a scheduler of one client that closed. */
  clear(): void {
    for (const entry of this.#heap) entry.index = -1
    this.#heap = []
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = null
    this.#armedAt = Number.POSITIVE_INFINITY
  }

  #run(): void {
    this.#timer = null
    this.#armedAt = Number.POSITIVE_INFINITY
    // Fire everything due (with 1 ms of slack, timers are not more precise than that).
    const now = performance.now() + 1
    while (this.#heap.length > 0 && this.#heap[0].at <= now) {
      const entry = this.#heap[0]
      this.cancel(entry)
      entry.fire()
    }
    if (this.#heap.length > 0) this.#arm()
  }

  #arm(): void {
    if (this.#timer) clearTimeout(this.#timer)
    const top = this.#heap[0]
    this.#armedAt = top.at
    const timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil(top.at - performance.now())))
    // Node's timers can be unref'd; a browser's are plain numbers.
    ;(timer as { unref?: () => void }).unref?.()
    this.#timer = timer
  }

  #up(i: number): void {
    const heap = this.#heap
    const entry = heap[i]
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent].at <= entry.at) break
      heap[i] = heap[parent]
      heap[i].index = i
      i = parent
    }
    heap[i] = entry
    entry.index = i
  }

  #down(i: number): void {
    const heap = this.#heap
    const n = heap.length
    const entry = heap[i]
    for (;;) {
      let child = 2 * i + 1
      if (child >= n) break
      if (child + 1 < n && heap[child + 1].at < heap[child].at) child++
      if (heap[child].at >= entry.at) break
      heap[i] = heap[child]
      heap[i].index = i
      i = child
    }
    heap[i] = entry
    entry.index = i
  }
}

/** The process-wide scheduler that client calls and server handlers share. */
export const deadlines = new DeadlineScheduler()
