import { describe, expect, it } from 'vitest'
import type { CallOptions } from './connection'
import { MAX_UNPROCESSED_RESENDS, type RefusedCall, refusedCallResender } from './resend'

function refused(overrides: Partial<RefusedCall> = {}): RefusedCall {
  return {
    route: '/r',
    payload: Buffer.from('p'),
    options: {},
    resends: 0,
    deadlineAt: undefined,
    ...overrides,
  }
}

function recorder() {
  const sent: Array<{ route: string; payload: string; options: CallOptions; resends: number }> = []
  let closed = false
  const resender = refusedCallResender(
    (route, payload, options, resends) => {
      sent.push({ route, payload: payload.toString(), options, resends })
      return Promise.resolve(Buffer.from('again'))
    },
    () => closed,
  )
  return { resender, sent, close: () => (closed = true) }
}

describe('refusedCallResender', () => {
  it('sends the same call again, counting the resend, keeping options without a deadline as they are', async () => {
    const { resender, sent } = recorder()
    const options: CallOptions = { metadata: { a: '1' } }
    const again = resender.resend(refused({ options, resends: 1 }))
    expect((await again)?.toString()).toBe('again')
    expect(sent).toEqual([{ route: '/r', payload: 'p', options, resends: 2 }])
    expect(sent[0].options).toBe(options)
  })

  it(`gives up after ${MAX_UNPROCESSED_RESENDS} resends, once the pool is closed, or past the deadline`, () => {
    const { resender, sent, close } = recorder()
    expect(resender.resend(refused({ resends: MAX_UNPROCESSED_RESENDS }))).toBeUndefined()
    expect(
      resender.resend(refused({ options: { timeout: 10 }, deadlineAt: performance.now() - 1 })),
    ).toBeUndefined()
    close()
    expect(resender.resend(refused())).toBeUndefined()
    expect(sent).toEqual([])
  })

  it('gives the new attempt only the time left of the deadline', () => {
    const { resender, sent } = recorder()
    resender.resend(refused({ options: { timeout: 1000 }, deadlineAt: performance.now() + 400 }))
    const timeout = sent[0].options.timeout!
    expect(timeout).toBeGreaterThan(0)
    expect(timeout).toBeLessThanOrEqual(400)
  })
})
