import { Code, Flags, RpcError } from '@srpc/protocol'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { whenRunning } from '../../../test-support/when-running'
import { type Context, Server, type ServerOptions } from '../src/index'
import { limiterOf } from '../src/internal'
import { MemoryClient } from './memory-client'

const servers: Server[] = []
const clients: MemoryClient[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  await Promise.all(servers.splice(0).map((server) => server.destroy()))
})

/** A server with no listener and no tls: every client reaches it over a memory transport. */
function serve(routes: (server: Server) => void, options: ServerOptions = {}): Server {
  const server = new Server(options)
  servers.push(server)
  routes(server)
  return server
}

function connect(server: Server): MemoryClient {
  const client = new MemoryClient(server)
  clients.push(client)
  return client
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves with the signal's reason once it aborts. */
function aborted(signal: AbortSignal): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason)
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason)))
}

describe('shutdown, close and destroy', () => {
  it('return the same promise however often and in whatever mix they are called', async () => {
    const server = serve((s) => s.handle('/hang', () => new Promise(() => {})))
    const client = connect(server)
    client.call(1, '/hang')
    await sleep(20)
    const stopping = server.shutdown({ timeout: 5000 })
    expect(server.shutdown()).toBe(stopping)
    expect(server.close({ timeout: 10 })).toBe(stopping)
    expect(server.destroy()).toBe(stopping)
    expect(server.destroy(new Error('again'))).toBe(stopping)
    await stopping
    expect(server.state).toBe('closed')
  })

  it('destroy() twice returns the same promise, and shutdown() after it too', async () => {
    const server = serve(() => {})
    const destroying = server.destroy()
    expect(server.destroy()).toBe(destroying)
    expect(server.shutdown()).toBe(destroying)
    expect(server.close()).toBe(destroying)
    await destroying
    expect(server.state).toBe('closed')
  })

  it('destroy() during a shutdown cuts its grace period short', async () => {
    const server = serve((s) => s.handle('/hang', () => new Promise(() => {})))
    const client = connect(server)
    client.call(1, '/hang')
    await sleep(20)
    const stopping = server.shutdown({ timeout: 10_000 })
    await sleep(20)
    const destroyedAt = performance.now()
    await server.destroy()
    await stopping
    expect(performance.now() - destroyedAt).toBeLessThan(1000)
    expect(server.connections).toBe(0)
  })

  it('goes idle → draining → closed, aborts shutdownSignal, then cuts what is left with UNAVAILABLE', async () => {
    let reason: unknown
    const { started, running } = whenRunning()
    const server = serve((s) =>
      s.handle('/hang', async (ctx: Context) => {
        running()
        reason = await aborted(ctx.shutdownSignal)
        await new Promise(() => {})
      }),
    )
    const client = connect(server)
    client.call(1, '/hang')
    await started
    expect(server.state).toBe('idle')
    const stopping = server.close({ timeout: 50 })
    expect(server.state).toBe('draining')
    const error = await client.error(1)
    expect(error.code).toBe(Code.UNAVAILABLE)
    expect(error.message).toBe('server is shutting down')
    expect(RpcError.is(reason, Code.UNAVAILABLE)).toBe(true)
    await stopping
    expect(server.state).toBe('closed')
    await client.closed()
  })

  it('lets calls in flight finish within the grace period', async () => {
    const { started, running } = whenRunning()
    const server = serve((s) =>
      s.handle('/slow', async () => {
        running()
        await sleep(50)
        return 'done'
      }),
    )
    const client = connect(server)
    client.call(1, '/slow')
    await started
    const stopping = server.shutdown({ timeout: 2000 })
    const reply = await client.next(1)
    expect(reply?.flags).toBe(Flags.RESPONSE)
    expect(reply?.value.toString()).toBe('done')
    await stopping
  })

  it('destroy(error) aborts every ctx.signal with that error and drops the connection without an error frame', async () => {
    let reason: unknown
    const { started, running } = whenRunning()
    const server = serve((s) =>
      s.handle('/hang', async (ctx) => {
        running()
        reason = await aborted(ctx.signal)
      }),
    )
    const client = connect(server)
    client.call(1, '/hang')
    await started
    await server.destroy(new RpcError(Code.ABORTED, 'worker recycled'))
    expect(RpcError.is(reason, Code.ABORTED)).toBe(true)
    expect((reason as RpcError).message).toBe('worker recycled')
    expect(await client.next(1)).toBeUndefined()
  })

  it('refuses a transport accepted during a shutdown with UNAVAILABLE', async () => {
    const { started, running } = whenRunning()
    const server = serve((s) =>
      s.handle('/hang', () => {
        running()
        return new Promise(() => {})
      }),
    )
    const first = connect(server)
    first.call(1, '/hang')
    await started
    const stopping = server.shutdown({ timeout: 200 })
    const late = connect(server)
    const error = await late.error(0)
    expect(error.code).toBe(Code.UNAVAILABLE)
    await late.closed()
    await stopping
  })

  it('rejects a timeout that is not a whole number of ms with INVALID_ARGUMENT naming it, and stays idle', async () => {
    const server = serve(() => {})
    const error = await server.shutdown({ timeout: -1 }).catch((err: RpcError) => err)
    expect(RpcError.is(error, Code.INVALID_ARGUMENT)).toBe(true)
    expect((error as RpcError).message).toContain('timeout')
    expect(server.state).toBe('idle')
  })
})

describe('the concurrency limiter behind a server', () => {
  it('runs `workers` handlers at once, queues up to maxQueue, refuses the rest with RESOURCE_EXHAUSTED', async () => {
    const release: (() => void)[] = []
    const server = serve(
      (s) => s.handle('/work', () => new Promise<string>((resolve) => release.push(() => resolve('done')))),
      { workers: 1, maxQueue: 1 },
    )
    const client = connect(server)
    client.call(1, '/work')
    client.call(2, '/work')
    client.call(3, '/work')
    expect((await client.error(3)).code).toBe(Code.RESOURCE_EXHAUSTED)
    const limiter = limiterOf(server)
    expect(limiter.active).toBe(1)
    expect(limiter.queued).toBe(1)
    release.shift()?.()
    expect((await client.next(1))?.value.toString()).toBe('done')
    // The queued call starts once the first is done; release it when it runs.
    await vi.waitFor(() => expect(release.length).toBe(1), { timeout: 2000, interval: 2 })
    release.shift()?.()
    expect((await client.next(2))?.value.toString()).toBe('done')
    expect(limiter.active).toBe(0)
    expect(limiter.queued).toBe(0)
  })
})
