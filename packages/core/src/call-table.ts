import type { FrameId } from '@srpc/protocol'

/** Slots allocated on the first call (a power of two). */
const INITIAL_SLOTS = 8
/** A table at least this large shrinks once it is mostly empty; smaller ones keep their slots. */
const SHRINK_FROM_SLOTS = 1024
/** What an empty slot holds: ids are never negative. */
const EMPTY = -1

/**
 * The calls in flight on one connection, by id: what a Map would do, without the Map's cost on
 * the path every call takes. A Map whose entries come and go a few at a time rebuilds its hash
 * table again and again (V8 shrinks it when it empties and rehashes it when deleted entries fill
 * it): about 240 bytes of garbage per call in a unary echo loop. Ids are integers, given in
 * order by the client, so this is an open-addressing table indexed by `id & mask` (consecutive
 * ids take consecutive slots) that deletes by shifting entries back, leaving no tombstones, and
 * keeps its slots when it empties (only a table of SHRINK_FROM_SLOTS or more shrinks, once
 * mostly empty). Ids too large for a number (bigints) go to a Map beside it.
 *
 * Read as a ReadonlyMap: iteration (rare: shutdown, a lost connection) goes over a snapshot in
 * ascending id order, so the table may change while it is iterated.
 */
export class CallTable<C> implements ReadonlyMap<FrameId, C> {
  #ids: number[] = []
  #calls: (C | undefined)[] = []
  #mask = -1
  #count = 0
  #big: Map<FrameId, C> | undefined

  get size(): number {
    return this.#count + (this.#big?.size ?? 0)
  }

  get(id: FrameId): C | undefined {
    if (typeof id !== 'number') return this.#big?.get(id)
    const slot = this.#find(id)
    return slot < 0 ? undefined : this.#calls[slot]
  }

  has(id: FrameId): boolean {
    if (typeof id !== 'number') return this.#big?.has(id) ?? false
    return this.#find(id) >= 0
  }

  /** Adds or replaces the call of `id` (a non-negative integer or a bigint). */
  set(id: FrameId, call: C): this {
    if (typeof id !== 'number') {
      this.#big ??= new Map()
      this.#big.set(id, call)
      return this
    }
    if ((this.#count + 1) * 2 > this.#ids.length) this.#resize(Math.max(INITIAL_SLOTS, this.#ids.length * 2))
    const ids = this.#ids
    const mask = this.#mask
    let slot = id & mask
    for (;;) {
      const at = ids[slot]
      if (at === EMPTY) break
      if (at === id) {
        this.#calls[slot] = call
        return this
      }
      slot = (slot + 1) & mask
    }
    ids[slot] = id
    this.#calls[slot] = call
    this.#count++
    return this
  }

  /** Removes `id`; false when it was not there. */
  delete(id: FrameId): boolean {
    if (typeof id !== 'number') return this.#big?.delete(id) ?? false
    let hole = this.#find(id)
    if (hole < 0) return false
    const ids = this.#ids
    const calls = this.#calls
    const mask = this.#mask
    // Backward-shift deletion: move up every later entry of the run whose home slot is not
    // between the hole and it, so that lookups never need a tombstone.
    let next = (hole + 1) & mask
    for (;;) {
      const at = ids[next]
      if (at === EMPTY) break
      const home = at & mask
      const stays = hole <= next ? hole < home && home <= next : hole < home || home <= next
      if (!stays) {
        ids[hole] = at
        calls[hole] = calls[next]
        hole = next
      }
      next = (next + 1) & mask
    }
    ids[hole] = EMPTY
    calls[hole] = undefined
    this.#count--
    if (ids.length >= SHRINK_FROM_SLOTS && this.#count * 16 < ids.length) this.#resize(ids.length / 4)
    return true
  }

  clear(): void {
    this.#ids = []
    this.#calls = []
    this.#mask = -1
    this.#count = 0
    this.#big = undefined
  }

  forEach(callback: (call: C, id: FrameId, map: ReadonlyMap<FrameId, C>) => void, thisArg?: unknown): void {
    for (const [id, call] of this.#snapshot()) callback.call(thisArg, call, id, this)
  }

  entries(): ReturnType<ReadonlyMap<FrameId, C>['entries']> {
    return this.#snapshot().entries()
  }

  keys(): ReturnType<ReadonlyMap<FrameId, C>['keys']> {
    return this.#snapshot().keys()
  }

  values(): ReturnType<ReadonlyMap<FrameId, C>['values']> {
    return this.#snapshot().values()
  }

  [Symbol.iterator](): ReturnType<ReadonlyMap<FrameId, C>['entries']> {
    return this.entries()
  }

  /** The slot of `id`, or -1. */
  #find(id: number): number {
    const ids = this.#ids
    const mask = this.#mask
    if (mask < 0) return -1
    let slot = id & mask
    for (;;) {
      const at = ids[slot]
      if (at === id) return slot
      if (at === EMPTY) return -1
      slot = (slot + 1) & mask
    }
  }

  #resize(slots: number): void {
    const ids = this.#ids
    const calls = this.#calls
    this.#ids = new Array<number>(slots).fill(EMPTY)
    this.#calls = new Array<C | undefined>(slots).fill(undefined)
    this.#mask = slots - 1
    this.#count = 0
    for (let i = 0; i < ids.length; i++) if (ids[i] !== EMPTY) this.set(ids[i], calls[i] as C)
  }

  /** Every entry, in ascending id order, as a Map of its own. */
  #snapshot(): Map<FrameId, C> {
    const entries: [FrameId, C][] = []
    for (let i = 0; i < this.#ids.length; i++) {
      if (this.#ids[i] !== EMPTY) entries.push([this.#ids[i], this.#calls[i] as C])
    }
    if (this.#big) entries.push(...this.#big)
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    return new Map(entries)
  }
}
