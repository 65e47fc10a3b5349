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
  /** Neighbours of a loose deadline (`addLoose`) in its queue; set by the scheduler, like `index`. */
  prev?: Deadline | undefined
  next?: Deadline | undefined
}

/** `index` of a loose deadline whose time is set (STAMPED) or still provisional (UNSTAMPED). */
const STAMPED = -2
const UNSTAMPED = -3
/**
 * Loose deadlines get their time when a timer, running while any wait, next stamps them: at most
 * LOOSE_STAMP_MS after they were added, so they fire at most that late. Only delays of
 * LOOSE_MIN_DELAY_MS or more are taken loose (at most 10 % late, 1.7 % for a minute).
 */
const LOOSE_STAMP_MS = 1000
const LOOSE_MIN_DELAY_MS = 10_000
/** Distinct loose delays at a time; a deadline with yet another delay goes to the heap. */
const MAX_LOOSE_QUEUES = 4

/**
 * The loose deadlines of one delay, oldest first, so their times never decrease along it: a ring
 * through `end` (its own neighbour when empty), so an entry unlinks itself without its queue.
 */
interface LooseQueue {
  readonly delay: number
  readonly end: Deadline
}

function looseQueue(delay: number): LooseQueue {
  const end: Deadline = { at: 0, index: -1, fire() {}, prev: undefined, next: undefined }
  end.prev = end
  end.next = end
  return { delay, end }
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
  #loose: LooseQueue[] = []
  #looseSize = 0
  /** Clock at the last stamp (read when the loose timer starts, then at each stamp). */
  #stampedAt = 0
  #looseTimer: ReturnType<typeof setTimeout> | null = null
  #onLooseTimer = () => this.#stamp()

  get size(): number {
    return this.#heap.length + this.#looseSize
  }

  /** Calls `fire` once, `delayMs` from now, unless cancelled first. */
  schedule(delayMs: number, fire: () => void): Deadline {
    const entry: Deadline = { at: 0, index: -1, fire }
    this.add(entry, delayMs)
    return entry
  }

  /** Calls `entry.fire()` once, `delayMs` from now, unless cancelled first; an entry already scheduled moves. */
  add(entry: Deadline, delayMs: number): void {
    if (entry.index !== -1) this.cancel(entry)
    // Whole milliseconds (timers are not more precise): a small integer is stored in the entry
    // itself, where a fraction would need a heap number per deadline.
    entry.at = Math.ceil(performance.now() + Math.max(0, delayMs))
    entry.index = this.#heap.length
    this.#heap.push(entry)
    this.#up(entry.index)
    if (entry.at < this.#armedAt) this.#arm()
  }

  /**
   * Like `add`, for a deadline that may fire up to a second late but never early (a pool's implicit
   * default timeout): no clock read, no heap work. Deadlines of one delay wait in a FIFO in the
   * order they were added, so adding and cancelling are O(1) links. A timer, running only while
   * loose deadlines wait, reads the clock once a second, gives every deadline added since its
   * previous run its time (now + delay: at most a second after it was added) and fires those due.
   * Until then `at` is a lower bound (the previous stamp + delay). Delays under ten seconds, and a
   * fifth distinct delay while four have deadlines waiting, go to the heap (`add`).
   */
  addLoose(entry: Deadline, delayMs: number): void {
    if (entry.index !== -1) this.cancel(entry)
    const queue = delayMs >= LOOSE_MIN_DELAY_MS ? this.#looseQueue(delayMs) : undefined
    if (queue === undefined) return this.add(entry, delayMs)
    let exact = false
    if (this.#looseTimer === null) {
      // The first after a quiet spell reads the clock (to start the stamps), so its time is exact.
      this.#stampedAt = performance.now()
      this.#armLoose(LOOSE_STAMP_MS)
      exact = true
    }
    entry.at = Math.ceil(this.#stampedAt + delayMs)
    entry.index = exact ? STAMPED : UNSTAMPED
    const end = queue.end
    const last = end.prev!
    entry.prev = last
    entry.next = end
    last.next = entry
    end.prev = entry
    this.#looseSize++
  }

  cancel(entry: Deadline | undefined | null): void {
    if (!entry || entry.index < 0) {
      if (entry != null && entry.index <= STAMPED) this.#unlink(entry)
      return
    }
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
    for (const { end } of this.#loose) while (end.next !== end) this.#unlink(end.next!)
    if (this.#looseTimer) clearTimeout(this.#looseTimer)
    this.#looseTimer = null
  }

  #looseQueue(delay: number): LooseQueue | undefined {
    const queues = this.#loose
    for (let i = 0; i < queues.length; i++) if (queues[i].delay === delay) return queues[i]
    if (queues.length >= MAX_LOOSE_QUEUES) {
      const empty = queues.findIndex(({ end }) => end.next === end)
      if (empty < 0) return undefined
      queues.splice(empty, 1)
    }
    const queue = looseQueue(delay)
    queues.push(queue)
    return queue
  }

  #unlink(entry: Deadline): void {
    const prev = entry.prev!
    const next = entry.next!
    prev.next = next
    next.prev = prev
    entry.prev = undefined
    entry.next = undefined
    entry.index = -1
    this.#looseSize--
  }

  /** Stamps what was added since the last run, fires what is due, and runs again while any wait. */
  #stamp(): void {
    this.#looseTimer = null
    const now = performance.now()
    this.#stampedAt = now
    let wait = LOOSE_STAMP_MS
    for (let q = 0; q < this.#loose.length; q++) {
      const { delay, end } = this.#loose[q]
      // What was added since the last stamp is the end of the queue.
      const at = Math.ceil(now + delay)
      for (let entry = end.prev!; entry !== end && entry.index === UNSTAMPED; entry = entry.prev!) {
        entry.at = at
        entry.index = STAMPED
      }
      while (end.next !== end && end.next!.at <= now + 1) {
        const entry = end.next!
        this.#unlink(entry)
        entry.fire()
      }
      const first = end.next!
      if (first !== end && first.index === STAMPED) wait = Math.min(wait, first.at - now)
    }
    if (this.#looseSize > 0 && this.#looseTimer === null) this.#armLoose(Math.max(1, Math.ceil(wait)))
  }

  #armLoose(delay: number): void {
    const timer = setTimeout(this.#onLooseTimer, delay)
    ;(timer as { unref?: () => void }).unref?.()
    this.#looseTimer = timer
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
