import { once } from 'node:events'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy on 127.0.0.1 that counts the bytes going each way: what a target puts on the wire,
 * TLS records, HTTP/2 frames and all. Used for the byte counts only, never for timings.
 */
export class CountingProxy {
  up = 0
  down = 0
  #server: Server | undefined
  #sockets = new Set<Socket>()

  async start(targetPort: number): Promise<number> {
    const server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1')
      for (const s of [client, upstream]) {
        s.setNoDelay(true)
        this.#sockets.add(s)
        s.on('close', () => this.#sockets.delete(s))
        s.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
      }
      client.on('data', (chunk: Buffer) => {
        this.up += chunk.length
      })
      upstream.on('data', (chunk: Buffer) => {
        this.down += chunk.length
      })
      client.pipe(upstream)
      upstream.pipe(client)
    })
    this.#server = server
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return (server.address() as AddressInfo).port
  }

  snapshot(): { up: number; down: number } {
    return { up: this.up, down: this.down }
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    const server = this.#server
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
