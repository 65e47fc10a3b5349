import { Pool, type PoolOptions, RpcError } from '@srpc/client'
import { Server, type ServerOptions } from '@srpc/server'
import { type SelfSignedResult, selfSigned } from '@srpc/tlsutil'

let material: Promise<SelfSignedResult> | undefined

function certificates(): Promise<SelfSignedResult> {
  material ??= selfSigned(['127.0.0.1'])
  return material
}

/** A TLS server on 127.0.0.1 port 0 and a pool to it; `cleanup()` in afterEach. */
export class Harness {
  #servers: Server[] = []
  #pools: Pool[] = []
  /** Errors the servers emitted (handler bugs), for assertions. */
  readonly serverErrors: Error[] = []

  /** `fresh`: hand the pool over before it negotiated (its first calls race the HELLO answer). */
  async start(
    setup: (server: Server) => void,
    options: { server?: Partial<ServerOptions>; pool?: Partial<PoolOptions>; fresh?: boolean } = {},
  ): Promise<{ server: Server; pool: Pool }> {
    const { serverOptions, clientOptions } = await certificates()
    const server = new Server({ address: '127.0.0.1:0', tls: serverOptions, ...options.server })
    server.on('error', (err) => this.serverErrors.push(err))
    setup(server)
    this.#servers.push(server)
    const { port } = await server.listen()
    const pool = new Pool({ address: `127.0.0.1:${port}`, tls: clientOptions, ...options.pool })
    this.#pools.push(pool)
    if (options.fresh) return { server, pool }
    await pool.connect()
    // One round trip, so every later call is opened with the negotiated extensions.
    await pool.ping()
    return { server, pool }
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.#pools.splice(0).map((p) => p.destroy()))
    await Promise.all(this.#servers.splice(0).map((s) => s.shutdown({ timeout: 200 })))
    this.serverErrors.length = 0
  }
}

/** The RpcError `promise` rejected with; throws if it resolved or rejected with anything else. */
export function errorOf(promise: Promise<unknown>): Promise<RpcError> {
  return promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${String(value)}`)
    },
    (err: unknown) => {
      if (!(err instanceof RpcError)) throw err
      return err
    },
  )
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const item of iterable) out.push(item)
  return out
}
