import { availableParallelism } from 'node:os'
import { Code, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { runCluster } from './cluster'
import { resolveClusterOptions } from './cluster-options'
import { Server } from './server'

const worker = () => new Server()

describe('cluster options', () => {
  it('default to a worker per core, 5 s of grace and a crash loop past 5 crashes a minute', () => {
    const options = resolveClusterOptions({ worker })
    expect(options.workers).toBe(availableParallelism())
    expect(options).toMatchObject({
      shutdownTimeout: 5000,
      startTimeout: 30_000,
      restartBackoff: { initial: 500, max: 10_000 },
      maxRestarts: 5,
      restartWindow: 60_000,
      signals: true,
    })
  })

  it('name the bad option in an INVALID_ARGUMENT', () => {
    const bad = (options: object, message: RegExp) => {
      let error: unknown
      try {
        resolveClusterOptions({ worker, ...options })
      } catch (err) {
        error = err
      }
      expect(RpcError.is(error, Code.INVALID_ARGUMENT)).toBe(true)
      expect((error as Error).message).toMatch(message)
    }
    bad({ worker: undefined }, /option worker must be a function/)
    bad({ workers: 0 }, /option workers must be a positive integer/)
    bad({ restartBackoff: { initial: 100, max: 10 } }, /option restartBackoff.max must not be below/)
    bad({ signals: 'yes' }, /option signals must be a boolean/)
    bad({ shutdownTimeout: -1 }, /option shutdownTimeout must be a non-negative integer/)
  })

  it('runCluster rejects bad options before forking anything', async () => {
    const error = await runCluster({ worker, workers: -1 }).catch((err: unknown) => err)
    expect(RpcError.is(error, Code.INVALID_ARGUMENT)).toBe(true)
  })
})
