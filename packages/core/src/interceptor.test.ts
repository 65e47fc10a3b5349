import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import {
  applyInterceptors,
  type CallInfo,
  type CallNext,
  type Interceptor,
  interceptorsOption,
  newCallStats,
  okResult,
  runChain,
} from './interceptor'

const call: CallInfo = {
  side: 'client',
  route: '/x',
  kind: 'unary',
  metadata: {},
  deadline: undefined,
  signal: undefined,
  payload: Buffer.alloc(0),
  peer: undefined,
  stats: newCallStats(),
}

const ok: CallNext = async (info) => okResult(info.stats, Buffer.from(info.metadata.who ?? 'nobody'))

describe('applyInterceptors', () => {
  it('puts the first interceptor outermost and lets each see what the one before passed on', async () => {
    const order: string[] = []
    const tag =
      (name: string): Interceptor =>
      (next) =>
      async (info) => {
        order.push(`${name}>`)
        const result = await next({ ...info, metadata: { ...info.metadata, who: name } })
        order.push(`<${name}`)
        return result
      }
    const result = await applyInterceptors([tag('a'), tag('b'), tag('c')], ok)(call)
    expect(order).toEqual(['a>', 'b>', 'c>', '<c', '<b', '<a'])
    expect(result.value?.toString()).toBe('c')
  })

  it('is the inner function itself with no interceptor', () => {
    expect(applyInterceptors([], ok)).toBe(ok)
  })
})

describe('runChain', () => {
  it('turns a synchronous throw into a rejection with that RpcError', async () => {
    const refuse: CallNext = () => {
      throw new RpcError(Code.UNAUTHENTICATED, 'no token')
    }
    await expect(runChain(refuse, call)).rejects.toMatchObject({ code: Code.UNAUTHENTICATED })
  })

  it('turns anything else thrown into INTERNAL keeping it as cause, or into what wrap makes of it', async () => {
    const boom = new TypeError('boom')
    const broken: CallNext = async () => {
      throw boom
    }
    const err = await runChain(broken, call).catch((e: RpcError) => e)
    expect(RpcError.is(err, Code.INTERNAL)).toBe(true)
    expect((err as RpcError).cause).toBe(boom)
    const seen: unknown[] = []
    const wrapped = await runChain(broken, call, (e) => {
      seen.push(e)
      return new RpcError(Code.UNKNOWN, 'hidden')
    }).catch((e: RpcError) => e)
    expect(wrapped).toMatchObject({ code: Code.UNKNOWN, message: 'hidden' })
    expect(seen).toEqual([boom])
  })

  it('refuses a result that is not an OK CallResult with INTERNAL', async () => {
    const nothing = (async () => undefined) as unknown as CallNext
    await expect(runChain(nothing, call)).rejects.toMatchObject({ code: Code.INTERNAL })
    const wrongCode = (async () => ({ code: 'NOT_FOUND' })) as unknown as CallNext
    await expect(runChain(wrongCode, call)).rejects.toMatchObject({ code: Code.INTERNAL })
  })
})

describe('interceptorsOption', () => {
  it('accepts an array of functions and refuses anything else with INVALID_ARGUMENT naming the entry', () => {
    const tag: Interceptor = (next) => next
    expect(interceptorsOption(undefined)).toEqual([])
    expect(interceptorsOption([tag])).toEqual([tag])
    expect(() => interceptorsOption(tag)).toThrow(/interceptors/)
    try {
      interceptorsOption([tag, 'x'])
      expect.unreachable()
    } catch (err) {
      expect(RpcError.is(err, Code.INVALID_ARGUMENT)).toBe(true)
      expect((err as RpcError).message).toContain('interceptors[1]')
    }
  })
})
