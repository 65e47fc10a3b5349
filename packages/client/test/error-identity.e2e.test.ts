import { createRequire } from 'node:module'
import { Code, RpcError } from '@srpc/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { Harness } from './harness'

// The ESM import above and this require() load the two builds of @srpc/protocol side by side,
// as an ESM server that uses a CommonJS helper library does.
const cjs = createRequire(import.meta.url)('@srpc/protocol') as typeof import('@srpc/protocol')

const h = new Harness()
afterEach(() => h.cleanup())

describe('RpcError from either build', () => {
  it('loads two distinct classes, so the checks below are not trivially true', () => {
    expect(cjs.RpcError).not.toBe(RpcError)
  })

  it('is an instance of the other build’s class, and RpcError.is holds both ways', () => {
    const fromCjs = new cjs.RpcError(Code.INVALID_ARGUMENT, 'bad id')
    const fromEsm = new RpcError(Code.NOT_FOUND, 'no such user')
    expect(fromCjs instanceof RpcError).toBe(true)
    expect(fromEsm instanceof cjs.RpcError).toBe(true)
    expect(RpcError.is(fromCjs, Code.INVALID_ARGUMENT)).toBe(true)
    expect(cjs.RpcError.is(fromEsm, Code.NOT_FOUND)).toBe(true)
    expect(RpcError.from(fromCjs)).toBe(fromCjs)
  })

  it('is not claimed by look-alikes or by a subclass it does not belong to', () => {
    class Special extends RpcError {}
    expect(new RpcError(Code.INTERNAL, 'x') instanceof Special).toBe(false)
    expect(new Special(Code.INTERNAL, 'x') instanceof RpcError).toBe(true)
    expect(new Special(Code.INTERNAL, 'x') instanceof cjs.RpcError).toBe(true)
    expect({ code: Code.INTERNAL, message: 'x', name: 'RpcError' } instanceof RpcError).toBe(false)
    expect(new Error('x') instanceof RpcError).toBe(false)
    expect((null as unknown) instanceof RpcError).toBe(false)
  })

  it('thrown by a handler from the CommonJS build keeps its code and message on the wire', async () => {
    const { address } = await h.server((s) =>
      s.handle('/cjs', () => {
        throw new cjs.RpcError(cjs.Code.INVALID_ARGUMENT, 'id must be numeric')
      }),
    )
    const pool = await h.pool(address)
    const err = await pool.call('/cjs').then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(RpcError.is(err)).toBe(true)
    expect((err as RpcError).code).toBe(Code.INVALID_ARGUMENT)
    expect((err as RpcError).message).toBe('id must be numeric')
  })
})
