import type { FrameId } from '@srpc/protocol'

/** Slots allocated on the first call (a power of two). */
const INITIAL_SLOTS = 2
/** A table at least this large shrinks once it is mostly empty; smaller ones keep their slots. */
const SHRINK_FROM_SLOTS = 1024
/** What an empty slot holds: ids are never negative. */
const EMPTY = -1

/**
 * The calls in flight on one connection, by id: what a Map would do, without the Map's cost on
 * the path every call takes. A Map whose entries come and go a few at a time rebuilds its hash
 * table again and again (V8 shrinks it when it empties and rehashes it when deleted entries fill
 * it): about 240 bytes of garbage per call in a unary echo loop. Ids are integers that the
 * client gives in order, so the calls in flight usually have distinct `id & mask` for a table of
 * twice their number: each call has one slot, found without probing or hashing. An id whose
 * slot is taken (a long session's id meeting a new one, a peer choosing ids its own way) and a
 * bigint id go to a Map beside it, so every id works and the common case stays a slot. The
 * table keeps its slots when it empties; only a table of SHRINK_FROM_SLOTS or more shrinks, once
 * mostly empty.
 *
 * Read as a ReadonlyMap: iteration (rare: shutdown, a lost connection) goes over a snapshot in
 * ascending id order, so the table may change while it is iterated.
 */
export class CallTable<C> implements ReadonlyMap<FrameId, C> {
  #ids: number[] = []
  #calls: (C | undefined)[] = []
  #mask = 0
  /** Calls in slots. */
  #count = 0
  /** Calls whose slot was taken, and bigint ids. */
  #others: Map<FrameId, C> | undefined

  get size(): number {
    return this.#count + (this.#others?.size ?? 0)
  }

  get(id: FrameId): C | undefined {
    if (typeof id === 'number' && this.#count > 0) {
      const slot = id & this.#mask
      if (this.#ids[slot] === id) return this.#calls[slot]
    }
    return this.#others?.get(id)
  }

  has(id: FrameId): boolean {
    if (typeof id === 'number' && this.#count > 0 && this.#ids[id & this.#mask] === id) return true
    return this.#others?.has(id) ?? false
  }

  /** Adds or replaces the call of `id` (a non-negative integer or a bigint). */
  set(id: FrameId, call: C): this {
    if (typeof id === 'number') {
      if ((this.size + 1) * 2 > this.#ids.length) this.#resize(Math.max(INITIAL_SLOTS, this.#ids.length * 2))
      const slot = id & this.#mask
      const at = this.#ids[slot]
      if (at === id) {
        this.#calls[slot] = call
        return this
      }
      if (at === EMPTY && !this.#others?.has(id)) {
        this.#ids[slot] = id
        this.#calls[slot] = call
        this.#count++
        return this
      }
    }
    this.#others ??= new Map()
    this.#others.set(id, call)
    return this
  }

  /** Removes `id`; false when it was not there. */
  delete(id: FrameId): boolean {
    if (typeof id === 'number' && this.#count > 0) {
      const slot = id & this.#mask
      if (this.#ids[slot] === id) {
        this.#ids[slot] = EMPTY
        this.#calls[slot] = undefined
        this.#count--
        const slots = this.#ids.length
        if (slots >= SHRINK_FROM_SLOTS && this.size * 16 < slots) this.#resize(slots / 4)
        return true
      }
    }
    return this.#others?.delete(id) ?? false
  }

  clear(): void {
    this.#ids = []
    this.#calls = []
    this.#mask = 0
    this.#count = 0
    this.#others = undefined
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

  /** Moves every entry into `slots` new slots (ids that were elsewhere may find theirs free now). */
  #resize(slots: number): void {
    const ids = this.#ids
    const calls = this.#calls
    const others = this.#others
    this.#ids = new Array<number>(slots).fill(EMPTY)
    this.#calls = new Array<C | undefined>(slots).fill(undefined)
    this.#mask = slots - 1
    this.#count = 0
    this.#others = undefined
    for (let i = 0; i < ids.length; i++) if (ids[i] !== EMPTY) this.#place(ids[i], calls[i] as C)
    if (others !== undefined) for (const [id, call] of others) this.#place(id, call)
  }

  /** Puts an entry known to be absent in its slot, or beside the table. */
  #place(id: FrameId, call: C): void {
    if (typeof id === 'number') {
      const slot = id & this.#mask
      if (this.#ids[slot] === EMPTY) {
        this.#ids[slot] = id
        this.#calls[slot] = call
        this.#count++
        return
      }
    }
    this.#others ??= new Map()
    this.#others.set(id, call)
  }

  /** Every entry, in ascending id order, as a Map of its own. */
  #snapshot(): Map<FrameId, C> {
    const entries: [FrameId, C][] = []
    for (let i = 0; i < this.#ids.length; i++) {
      if (this.#ids[i] !== EMPTY) entries.push([this.#ids[i], this.#calls[i] as C])
    }
    if (this.#others) entries.push(...this.#others)
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    return new Map(entries)
  }
}
