import type { SrvRecord } from 'node:dns'
import { createServer } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { Pool, srvResolver } from '../src/index'
import { certificates, Harness, sleep } from './harness'

const NAME = '_srpc._tcp.orders.test'
const h = new Harness()
const pools: Pool[] = []
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.destroy()))
  await h.cleanup()
})

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** An SRV answer injected into the resolver: `primary` at priority 10, `backup` at 20. */
function resolverFor(primaryPort: number, backupPort: number) {
  const records: SrvRecord[] = [
    { name: 'primary.orders.test', port: primaryPort, priority: 10, weight: 1 },
    { name: 'backup.orders.test', port: backupPort, priority: 20, weight: 1 },
  ]
  return srvResolver(NAME, {
    resolveSrv: async () => records,
    lookup: async () => [{ address: '127.0.0.1', family: 4 }],
    servername: 'localhost',
  })
}

describe('a pool on an SRV resolver', () => {
  it('uses the next priority while the first has no reachable target, and returns when it is back', async () => {
    const primaryPort = await freePort()
    const backup = await h.server((s) => s.handle('/who', () => 'backup'))
    const { clientOptions } = await certificates()
    const pool = new Pool({ resolver: resolverFor(primaryPort, backup.port), tls: clientOptions })
    pools.push(pool)
    pool.on('error', () => {})
    // Nothing listens on the primary's port: the first attempt fails and the backup joins.
    expect(String(await pool.call('/who', '', { waitForReady: true, timeout: 5000 }))).toBe('backup')

    await h.server((s) => s.handle('/who', () => 'primary'), { address: `127.0.0.1:${primaryPort}` })
    // The pool keeps probing the primary; once through, the backup is dropped. Bounded wait.
    let reply = ''
    for (let i = 0; i < 200 && reply !== 'primary'; i++) {
      reply = String(await pool.call('/who', '', { waitForReady: true, timeout: 5000 }))
      if (reply !== 'primary') await sleep(50)
    }
    expect(reply).toBe('primary')
    for (let i = 0; i < 100 && backup.server.connections > 0; i++) await sleep(50)
    expect(backup.server.connections).toBe(0)
    for (let i = 0; i < 10; i++) expect(String(await pool.call('/who'))).toBe('primary')
  })

  it('never uses the backup while the primary answers', async () => {
    const primary = await h.server((s) => s.handle('/who', () => 'primary'))
    const backup = await h.server((s) => s.handle('/who', () => 'backup'))
    const { clientOptions } = await certificates()
    const pool = new Pool({ resolver: resolverFor(primary.port, backup.port), tls: clientOptions, size: 4 })
    pools.push(pool)
    for (let i = 0; i < 20; i++)
      expect(String(await pool.call('/who', '', { waitForReady: true }))).toBe('primary')
    expect(backup.server.connections).toBe(0)
  })
})
