import type { FrameId } from '@srpc/protocol'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CallTable } from './call-table'

type Op = { kind: 'set'; id: FrameId; value: number } | { kind: 'delete'; id: FrameId } | { kind: 'clear' }

/** Ids as connections see them: mostly consecutive, some far apart, some past 2^31, a few bigints. */
const id = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 2 ** 53 - 1 }) },
  { weight: 1, arbitrary: fc.constantFrom(2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 8, 2 ** 53 - 1) },
  { weight: 1, arbitrary: fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }) },
)
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('set' as const), id, value: fc.integer() }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('delete' as const), id }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'clear' as const }) },
)

function sortedEntries(map: ReadonlyMap<FrameId, number>): [FrameId, number][] {
  return [...map.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
}

describe('CallTable', () => {
  it('answers get, has, size, delete and iteration as a Map does, whatever the order of operations', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 300 }), (ops) => {
        const table = new CallTable<number>()
        const model = new Map<FrameId, number>()
        for (const o of ops) {
          if (o.kind === 'set') {
            table.set(o.id, o.value)
            model.set(o.id, o.value)
          } else if (o.kind === 'delete') {
            expect(table.delete(o.id)).toBe(model.delete(o.id))
          } else {
            table.clear()
            model.clear()
          }
          expect(table.size).toBe(model.size)
        }
        for (const key of [...model.keys(), 0, 7, 2 ** 32, 12345678901n]) {
          expect(table.get(key)).toBe(model.get(key))
          expect(table.has(key)).toBe(model.has(key))
        }
        expect([...table]).toEqual(sortedEntries(model))
      }),
      { numRuns: 500 },
    )
  })

  it('finds every call while thousands come and go in the order a busy connection makes them', () => {
    const table = new CallTable<number>()
    const open: number[] = []
    let next = 1
    for (let round = 0; round < 20_000; round++) {
      // Up to 300 in flight, answered out of order.
      if (open.length < 300 && (round % 3 !== 0 || open.length === 0)) {
        table.set(next, next * 2)
        open.push(next++)
      } else {
        const [gone] = open.splice((round * 7919) % open.length, 1)
        expect(table.delete(gone)).toBe(true)
        expect(table.get(gone)).toBeUndefined()
      }
      if (round % 1000 === 0) for (const id of open) expect(table.get(id)).toBe(id * 2)
    }
    expect(table.size).toBe(open.length)
    expect([...table.keys()]).toEqual([...open].sort((a, b) => a - b))
  })

  it('keeps ids apart that share a slot, and deletes one without losing the others', () => {
    const table = new CallTable<string>()
    // 16 slots by then: 1, 17 and 2^32 + 1 want slot 1; 9 and 25 slot 9.
    const ids = [1, 9, 17, 25, 2 ** 32 + 1]
    for (const i of ids) table.set(i, `call ${i}`)
    expect(table.delete(9)).toBe(true)
    expect(table.get(1)).toBe('call 1')
    expect(table.get(17)).toBe('call 17')
    expect(table.get(25)).toBe('call 25')
    expect(table.get(2 ** 32 + 1)).toBe(`call ${2 ** 32 + 1}`)
    expect(table.get(9)).toBeUndefined()
    expect(table.delete(9)).toBe(false)
  })

  it('replaces a call whose id waited beside the table, even once its slot is free', () => {
    const table = new CallTable<string>()
    table.set(1, 'one')
    table.set(9, 'nine') // with 2 or 8 slots, slot 1 is taken
    table.delete(1)
    table.set(9, 'nine again')
    expect(table.size).toBe(1)
    expect(table.get(9)).toBe('nine again')
    expect(table.delete(9)).toBe(true)
    expect(table.has(9)).toBe(false)
    expect(table.size).toBe(0)
  })

  it('gives its iteration a snapshot: the table may change while it is walked', () => {
    const table = new CallTable<number>()
    for (let i = 1; i <= 10; i++) table.set(i, i)
    const seen: FrameId[] = []
    for (const [i] of table) {
      seen.push(i)
      table.delete(i)
      table.set(Number(i) + 100, Number(i))
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    expect(table.size).toBe(10)
  })

  it('shrinks a large table once it is mostly empty, and still finds what is left', () => {
    const table = new CallTable<number>()
    for (let i = 0; i < 5000; i++) table.set(i, i)
    for (let i = 0; i < 4990; i++) table.delete(i)
    for (let i = 4990; i < 5000; i++) expect(table.get(i)).toBe(i)
    expect(table.size).toBe(10)
  })
})
