import { Server, type ServerOptions } from '@srpc/server'
import { type SelfSignedResult, selfSigned } from '@srpc/tlsutil'
import { Pool, type PoolOptions, RpcError } from '../src/index'

let material: Promise<SelfSignedResult> | undefined

/** One certificate for the whole test file: generation is fast but not free. */
export function certificates(): Promise<SelfSignedResult> {
  material ??= selfSigned(['127.0.0.1', 'localhost', '::1'])
  return material
}

/**
 * Starts servers and pools for a test and tears all of them down afterwards.
 * Use one per test file: `const h = new Harness(); afterEach(() => h.cleanup())`.
 */
export class Harness {
  #servers: Server[] = []
  #pools: Pool[] = []

  async server(
    routes: (server: Server) => void,
    options: Partial<ServerOptions> = {},
  ): Promise<{ server: Server; port: number; address: string }> {
    const { serverOptions } = await certificates()
    const server = new Server({ address: '127.0.0.1:0', tls: serverOptions, ...options })
    routes(server)
    this.#servers.push(server)
    const { port } = await server.listen()
    return { server, port, address: `127.0.0.1:${port}` }
  }

  /** A pool to one address, or spread over several (`addresses`). */
  async pool(address: string | readonly string[], options: Partial<PoolOptions> = {}): Promise<Pool> {
    const { clientOptions } = await certificates()
    const target = typeof address === 'string' ? { address } : { addresses: address }
    const pool = new Pool({ ...target, tls: clientOptions, ...options })
    this.#pools.push(pool)
    return pool
  }

  async cleanup(): Promise<void> {
    const pools = this.#pools.splice(0)
    const servers = this.#servers.splice(0)
    await Promise.all(pools.map((p) => p.destroy()))
    await Promise.all(servers.map((s) => s.shutdown({ timeout: 200 })))
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** The RpcError `promise` rejected with; fails the test if it resolved or rejected with anything else. */
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

/** The code of the RpcError `promise` rejected with (see errorOf). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  return (await errorOf(promise)).code
}
