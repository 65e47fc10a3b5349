import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { describe, expect, it } from 'vitest'
import {
  callsObserved,
  DIAGNOSTICS_CHANNELS,
  diagnosticsInterceptor,
  observedInterceptors,
} from './diagnostics'
import type { CallInfo, Interceptor } from './interceptor'
import { newCallStats, okResult } from './interceptor'

const mine: Interceptor = (next) => (call) => next(call)
const call = { side: 'client', route: '/r', stats: newCallStats() } as unknown as CallInfo

describe('observedInterceptors', () => {
  it('returns the interceptors as given while nobody subscribes (the direct path stays direct)', () => {
    const list = [mine]
    expect(callsObserved()).toBe(false)
    expect(observedInterceptors(list)).toBe(list)
  })

  it('puts the publisher first while someone subscribes to any call channel, and reuses that array', () => {
    const list = [mine]
    const listener = () => {}
    subscribe(DIAGNOSTICS_CHANNELS.callError, listener)
    try {
      const observed = observedInterceptors(list)
      expect(observed).toEqual([diagnosticsInterceptor, mine])
      expect(observedInterceptors(list)).toBe(observed)
    } finally {
      unsubscribe(DIAGNOSTICS_CHANNELS.callError, listener)
    }
    expect(observedInterceptors(list)).toBe(list)
  })

  it('publishes start then end with the same call, and error with the rejection, passing both through', async () => {
    const seen: [string, unknown][] = []
    const listeners = (['callStart', 'callEnd', 'callError'] as const).map((name) => {
      const listener = (message: unknown) => seen.push([name, message])
      subscribe(DIAGNOSTICS_CHANNELS[name], listener)
      return [name, listener] as const
    })
    try {
      const result = okResult(call.stats, Buffer.from('r'))
      await expect(diagnosticsInterceptor(async () => result)(call)).resolves.toBe(result)
      const failure = new Error('x')
      await expect(
        diagnosticsInterceptor(async () => {
          throw failure
        })(call),
      ).rejects.toBe(failure)
      expect(seen).toEqual([
        ['callStart', { call }],
        ['callEnd', { call, result }],
        ['callStart', { call }],
        ['callError', { call, error: failure }],
      ])
    } finally {
      for (const [name, listener] of listeners) unsubscribe(DIAGNOSTICS_CHANNELS[name], listener)
    }
  })
})
