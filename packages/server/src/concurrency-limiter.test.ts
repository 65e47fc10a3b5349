import { AsyncLocalStorage } from 'node:async_hooks'
import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { ConcurrencyLimiter, type Job, WorkerPool } from './concurrency-limiter'

function job(log: string[], name: string, options: { deadline?: number; abandoned?: boolean } = {}) {
  let release: (() => void) | undefined
  const j: Job & { finish(): void } = {
    abandoned: options.abandoned ?? false,
    deadline: options.deadline,
    start(r) {
      log.push(`start ${name}`)
      release = r
    },
    reject(error: RpcError) {
      log.push(`reject ${name} ${error.code}`)
    },
    finish() {
      release?.()
    },
  }
  return j
}

describe('ConcurrencyLimiter', () => {
  it('starts jobs up to the worker count, queues the rest first-in first-out', () => {
    const log: string[] = []
    const pool = new ConcurrencyLimiter(2, 10)
    const jobs = ['a', 'b', 'c', 'd'].map((n) => job(log, n))
    for (const j of jobs) pool.submit(j)
    expect(log).toEqual(['start a', 'start b'])
    expect(pool.active).toBe(2)
    expect(pool.queued).toBe(2)
    jobs[1].finish()
    expect(log).toEqual(['start a', 'start b', 'start c'])
    jobs[0].finish()
    expect(log.at(-1)).toBe('start d')
    expect(pool.queued).toBe(0)
  })

  it('throws RESOURCE_EXHAUSTED once the queue is full, without queueing the job', () => {
    const pool = new ConcurrencyLimiter(1, 1)
    const log: string[] = []
    pool.submit(job(log, 'a'))
    pool.submit(job(log, 'b'))
    let error: unknown
    try {
      pool.submit(job(log, 'c'))
    } catch (err) {
      error = err
    }
    expect(RpcError.is(error, Code.RESOURCE_EXHAUSTED)).toBe(true)
    expect(pool.queued).toBe(1)
  })

  it('skips abandoned jobs and rejects jobs whose deadline passed while queued', () => {
    const log: string[] = []
    const pool = new ConcurrencyLimiter(1, 10)
    const first = job(log, 'first')
    pool.submit(first)
    pool.submit(job(log, 'gone', { abandoned: true }))
    pool.submit(job(log, 'expired', { deadline: performance.now() - 1 }))
    pool.submit(job(log, 'next'))
    first.finish()
    expect(log).toEqual(['start first', 'reject expired DEADLINE_EXCEEDED', 'start next'])
    expect(pool.active).toBe(1)
  })
})

describe('WorkerPool', () => {
  it('is the same class as ConcurrencyLimiter, so code written from the seed keeps working', () => {
    expect(WorkerPool).toBe(ConcurrencyLimiter)
    expect(new WorkerPool(1, 0)).toBeInstanceOf(ConcurrencyLimiter)
  })

  it('starts a queued job in the async context it was submitted in, not in the one that freed the worker', () => {
    const storage = new AsyncLocalStorage<string>()
    const seen: (string | undefined)[] = []
    const limiter = new ConcurrencyLimiter(1, 10)
    const first = job([], 'first')
    storage.run('first call', () => limiter.submit(first))
    const queued: Job = {
      abandoned: false,
      deadline: undefined,
      start: (release) => {
        seen.push(storage.getStore())
        release()
      },
      reject: () => {},
    }
    storage.run('second call', () => limiter.submit(queued))
    storage.run('whoever finished', () => first.finish())
    expect(seen).toEqual(['second call'])
  })
})
