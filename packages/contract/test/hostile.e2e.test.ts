import { Int32ValueSchema } from '@bufbuild/protobuf/wkt'
import { Code, RpcError } from '@srpc/protocol'
import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { bytes, type Codec, contract, implement, json, msgpack, protobuf, unary } from '../src/index'
import type { Schema } from '../src/schema'
import { readInput } from '../src/values'
import { errorOf, Harness } from './harness'

const Input = z.object({ id: z.string(), n: z.number().int(), tags: z.array(z.string()).max(10) })

/** Every codec with a schema its hostile inputs must satisfy or be refused by. */
const CODECS: [string, Codec, Schema][] = [
  ['json', json, Input],
  ['msgpack', msgpack, Input],
  ['protobuf', protobuf, Int32ValueSchema],
  ['bytes', bytes, z.instanceof(Uint8Array).refine((b) => b.length <= 4, 'at most 4 bytes')],
]

const POLLUTING = [
  '{"__proto__":{"polluted":true},"id":"x","n":1,"tags":[]}',
  '{"id":"x","n":1,"tags":[],"a":{"__proto__":{"polluted":true}}}',
  '{"constructor":{"prototype":{"polluted":true}},"id":"x","n":1,"tags":[]}',
  '[{"__proto__":{"polluted":true}}]',
  // The same keys behind \u escapes, which JSON.parse turns back into __proto__ and constructor.
  '{"\\u005f_proto__":{"polluted":true},"id":"x","n":1,"tags":[]}',
  '{"\\u0063onstructor":{"prototype":{"polluted":true}},"id":"x","n":1,"tags":[]}',
]

function deepJson(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`
}

function deepMsgpack(depth: number): Buffer {
  // fixarray of one element, `depth` times, then nil.
  return Buffer.concat([Buffer.alloc(depth, 0x91), Buffer.of(0xc0)])
}

/** What readInput may do with anything: return a value the schema accepts, or throw INVALID_ARGUMENT. */
async function outcome(codec: Codec, schema: Schema, payload: Uint8Array): Promise<'ok' | Code> {
  try {
    await readInput(codec, schema, payload)
    return 'ok'
  } catch (err) {
    if (!(err instanceof RpcError)) throw new Error(`not an RpcError: ${String(err)}`)
    return err.code
  }
}

function pristine(): boolean {
  return (
    ({} as { polluted?: unknown }).polluted === undefined &&
    Object.getOwnPropertyNames(Object.prototype).every((k) => k in Object.prototype) &&
    !('polluted' in Object.prototype)
  )
}

describe.each(CODECS)('the %s codec given hostile input', (_name, codec, schema) => {
  it('answers random bytes with a valid value or INVALID_ARGUMENT, never anything else', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (payload) => {
        const result = await outcome(codec, schema, payload)
        expect(['ok', Code.INVALID_ARGUMENT]).toContain(result)
      }),
      { numRuns: 2000 },
    )
    expect(pristine()).toBe(true)
  })

  it('answers deep nesting, huge numbers and prototype keys with INVALID_ARGUMENT', async () => {
    const payloads: Uint8Array[] = [
      Buffer.from(deepJson(200_000)),
      deepMsgpack(200_000),
      Buffer.from('{"id":"x","n":1e400,"tags":[]}'),
      Buffer.from('{"id":"x","n":123456789012345678901234567890,"tags":[]}'),
      // msgpack: { id: 'x', n: uint64 max, tags: [] }
      Buffer.concat([
        Buffer.of(0x83, 0xa2),
        Buffer.from('id'),
        Buffer.of(0xa1, 0x78, 0xa1, 0x6e, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xa4),
        Buffer.from('tags'),
        Buffer.of(0x90),
      ]),
      ...POLLUTING.map((text) => Buffer.from(text)),
      ...POLLUTING.map((text) => msgpack.encode(JSON.parse(text), Input)),
      Buffer.alloc(64, 0xff),
    ]
    for (const payload of payloads) {
      // The bytes codec accepts anything up to 4 bytes, protobuf may read some of these as a message.
      const result = await outcome(codec, schema, payload)
      if (codec === json || codec === msgpack) expect(result).toBe(Code.INVALID_ARGUMENT)
      else expect(['ok', Code.INVALID_ARGUMENT]).toContain(result)
    }
    expect(pristine()).toBe(true)
  })

  it('refuses arbitrary JSON-like values that miss the schema', async () => {
    if (codec !== json && codec !== msgpack) return
    await fc.assert(
      fc.asyncProperty(
        fc.jsonValue({ maxDepth: 6 }).filter((value) => !Input.safeParse(value).success),
        async (value) => {
          const payload =
            codec === json ? Buffer.from(JSON.stringify(value) ?? 'null') : msgpack.encode(value, Input)
          expect(await outcome(codec, schema, payload)).toBe(Code.INVALID_ARGUMENT)
        },
      ),
      { numRuns: 1000 },
    )
    expect(pristine()).toBe(true)
  })
})

describe('a live server given hostile payloads', () => {
  const h = new Harness()
  afterEach(() => h.cleanup())

  it('answers each with INVALID_ARGUMENT, keeps serving and reports no handler error', async () => {
    const contracts = CODECS.map(([name, codec, schema]) =>
      contract(`h-${name}`, { echo: unary({ input: schema, output: z.any() as Schema }) }, { codec }),
    )
    let handled = 0
    const { pool } = await h.start((server) => {
      for (const c of contracts)
        implement(server, c, {
          echo: () => {
            handled++
            return c.codec === bytes ? Buffer.of(1) : c.codec === protobuf ? { value: 1 } : { ok: true }
          },
        } as never)
    })
    const samples = fc.sample(fc.uint8Array({ minLength: 5, maxLength: 256 }), 200)
    const hostile = [
      Buffer.from(deepJson(100_000)),
      deepMsgpack(100_000),
      ...POLLUTING.map((t) => Buffer.from(t)),
      ...POLLUTING.map((t) => msgpack.encode(JSON.parse(t), Input)),
    ]
    for (const c of contracts.slice(0, 2)) {
      for (const payload of [...hostile, ...samples]) {
        const err = await errorOf(pool.call(`/${c.name}/echo`, payload))
        expect(err.code).toBe(Code.INVALID_ARGUMENT)
      }
    }
    expect(handled).toBe(0)
    expect(h.serverErrors).toEqual([])
    expect(pristine()).toBe(true)
    // Still serving well-formed calls.
    const ok = await pool.call('/h-json/echo', '{"id":"a","n":1,"tags":[]}')
    expect(JSON.parse(ok.toString())).toEqual({ ok: true })
  })
})
