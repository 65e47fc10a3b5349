import { Pool } from '@srpc/client'
import { Server } from '@srpc/server'
import { type SelfSignedResult, selfSigned } from '@srpc/tlsutil'
import { afterEach, describe, expect, it } from 'vitest'
import { Code, RpcError, ThreadPool, type ThreadPoolOptions } from '../src/index'

const TASKS = new URL('./fixtures/tasks.mjs', import.meta.url)

const pools: ThreadPool[] = []
const servers: Server[] = []
const clients: Pool[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((p) => p.destroy()))
  await Promise.all(servers.splice(0).map((s) => s.destroy()))
  await Promise.all(pools.splice(0).map((p) => p.destroy()))
})

function threads(options: Partial<ThreadPoolOptions> = {}): ThreadPool {
  const pool = new ThreadPool({ filename: TASKS, maxThreads: 1, minThreads: 1, ...options })
  pools.push(pool)
  return pool
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    if (!RpcError.is(err)) throw err
    return err.code
  }
  throw new Error('expected a failure')
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The counter a `spin` task bumps while it runs. */
function progress(): { buffer: SharedArrayBuffer; read: () => number } {
  const buffer = new SharedArrayBuffer(4)
  const view = new Int32Array(buffer)
  return { buffer, read: () => Atomics.load(view, 0) }
}

/** Waits (bounded) until `check` holds. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await sleep(10)
  }
}

describe('ThreadPool', () => {
  it('runs a task on a thread and returns its result', async () => {
    const pool = threads()
    expect(await pool.run(undefined, { a: [1, 2] }, { name: 'echo' })).toEqual({ a: [1, 2] })
    expect(await pool.run(undefined, { ms: 1 })).toBe('spun 1')
  })

  it('refuses a task with RESOURCE_EXHAUSTED once maxQueue tasks wait', async () => {
    const pool = threads({ maxQueue: 2 })
    const signal = new AbortController()
    const call = { signal: signal.signal }
    const running = [
      pool.run(call, { ms: 10_000 }),
      pool.run(call, { ms: 10_000 }),
      pool.run(call, { ms: 10_000 }),
    ]
    for (const p of running) p.catch(() => {})
    await until(() => pool.queued === 2)
    const refused = pool.run(call, { ms: 1 })
    expect(await codeOf(refused)).toBe(Code.RESOURCE_EXHAUSTED)
    signal.abort()
    for (const p of running) expect(await codeOf(p)).toBe(Code.CANCELLED)
  })

  it('aborts a running task when the call is cancelled: the thread stops working', async () => {
    const pool = threads()
    const { buffer, read } = progress()
    const cancel = new AbortController()
    const task = pool.run({ signal: cancel.signal }, { ms: 10_000, progress: buffer })
    await until(() => read() > 0)
    cancel.abort(new RpcError(Code.CANCELLED, 'client went away'))
    const error = await task.catch((err: unknown) => err)
    expect(RpcError.is(error, Code.CANCELLED)).toBe(true)
    expect((error as RpcError).message).toBe('client went away')
    // The thread was terminated: the counter stops moving.
    await sleep(100)
    const stopped = read()
    await sleep(200)
    expect(read()).toBe(stopped)
    // And the pool still works.
    expect(await pool.run(undefined, { ms: 1 })).toBe('spun 1')
  })

  it('bounds a task by the call deadline and by its timeout: DEADLINE_EXCEEDED, task aborted', async () => {
    const pool = threads()
    const { buffer, read } = progress()
    const task = pool.run({ deadline: Date.now() + 300 }, { ms: 10_000, progress: buffer })
    expect(await codeOf(task)).toBe(Code.DEADLINE_EXCEEDED)
    await sleep(100)
    const stopped = read()
    await sleep(200)
    expect(read()).toBe(stopped)
    expect(await codeOf(pool.run(undefined, { ms: 10_000 }, { timeout: 200 }))).toBe(Code.DEADLINE_EXCEEDED)
    expect(await codeOf(pool.run({ deadline: Date.now() - 1 }, { ms: 1 }))).toBe(Code.DEADLINE_EXCEEDED)
  })

  it('turns a task that throws or kills its thread into an INTERNAL RpcError', async () => {
    const pool = threads()
    const thrown = await pool
      .run(undefined, { message: 'bad input' }, { name: 'fail' })
      .catch((e: unknown) => e)
    expect(RpcError.is(thrown, Code.INTERNAL)).toBe(true)
    expect((thrown as RpcError).message).toBe('thread task failed: bad input')
    const died = await pool.run(undefined, {}, { name: 'exit' }).catch((e: unknown) => e)
    expect(RpcError.is(died, Code.INTERNAL)).toBe(true)
    expect(await pool.run(undefined, 'still here', { name: 'echo' })).toBe('still here')
  })

  it('refuses tasks with UNAVAILABLE after close()', async () => {
    const pool = threads()
    const closing = pool.close()
    expect(pool.close()).toBe(closing)
    await closing
    expect(await codeOf(pool.run(undefined, { ms: 1 }))).toBe(Code.UNAVAILABLE)
  })
})

describe('ThreadPool behind a server', () => {
  let material: Promise<SelfSignedResult> | undefined
  async function serve(route: (server: Server, pool: ThreadPool) => void): Promise<Pool> {
    material ??= selfSigned(['127.0.0.1'])
    const { serverOptions, clientOptions } = await material
    const server = new Server({ address: '127.0.0.1:0', tls: serverOptions })
    servers.push(server)
    route(server, threads())
    server.handle('/light', () => 'light')
    const { port } = await server.listen()
    const client = new Pool({ address: `127.0.0.1:${port}`, tls: clientOptions })
    clients.push(client)
    return client
  }

  it('answers a light route while a heavy one runs on a thread', async () => {
    const client = await serve((server, pool) =>
      server.handle('/heavy', (ctx) => pool.run(ctx, { ms: 1500 })),
    )
    let heavyDone = false
    const heavy = client.call('/heavy').then((reply) => {
      heavyDone = true
      return String(reply)
    })
    await sleep(100)
    expect(String(await client.call('/light'))).toBe('light')
    expect(heavyDone).toBe(false)
    expect(await heavy).toBe('spun 1500')
  })

  it('gives the client the task error code, and cancels the task with the call', async () => {
    const { buffer, read } = progress()
    const client = await serve((server, pool) => {
      server.handle('/fail', (ctx) => pool.run(ctx, { message: 'nope' }, { name: 'fail' }))
      server.handle('/spin', (ctx) => pool.run(ctx, { ms: 10_000, progress: buffer }))
    })
    const failed = await client.call('/fail').catch((e: unknown) => e)
    expect(RpcError.is(failed, Code.INTERNAL)).toBe(true)
    expect((failed as RpcError).message).toMatch(/thread task failed: nope/)
    expect(await codeOf(client.call('/spin', '', { timeout: 300 }))).toBe(Code.DEADLINE_EXCEEDED)
    await sleep(150)
    const stopped = read()
    await sleep(200)
    expect(read()).toBe(stopped)
  })
})

describe('ThreadPool options', () => {
  it('refuses a task module that does not exist, and bad limits, with INVALID_ARGUMENT', () => {
    const make = (options: ThreadPoolOptions) => () => new ThreadPool(options)
    expect(make({ filename: '/nonexistent/tasks.mjs' })).toThrow(/option filename names no file/)
    expect(make({ filename: TASKS, maxQueue: -1 })).toThrow(/option maxQueue must be a non-negative integer/)
    expect(make({ filename: TASKS, timeout: 0 })).toThrow(/option timeout must be a positive integer/)
  })
})
