import * as net from 'node:net'
import * as tls from 'node:tls'

/** What a client saw: the server's verdict on the handshake comes back as its greeting. */
export interface Exchange {
  authorized: boolean
  protocol: string | null
  greeting: string
}

/** A handshake the server refused: the socket error, and the verification verdict on the client's certificate. */
export interface Refusal {
  code: string | undefined
  authorizationError: string | undefined
}

export interface TestServer {
  host: string
  port: number
  /** `socket.authorized` of every connection that completed the handshake on the server side. */
  accepted: boolean[]
  /** Resolves with the next `tlsClientError`: a handshake the server refused. */
  nextRefusal(): Promise<Refusal>
}

/**
 * Real TLS servers on loopback, port 0, and clients for them. Everything opened here is tracked and torn
 * down by `closeAll`, so no test leaves a handle behind.
 */
export class TlsHarness {
  #servers = new Set<tls.Server>()
  #sockets = new Set<net.Socket>()

  async listen(options: tls.TlsOptions, host = '127.0.0.1'): Promise<TestServer> {
    const accepted: boolean[] = []
    const refusals: Refusal[] = []
    const waiters: Array<(refusal: Refusal) => void> = []
    const server = tls.createServer(options, (socket) => {
      accepted.push(socket.authorized)
      socket.end(`hello ${socket.authorized ? 'authorized' : 'unauthorized'}\n`)
    })
    this.#servers.add(server)
    server.on('connection', (socket) => this.#track(socket))
    server.on('tlsClientError', (error: Error & { code?: string }, socket) => {
      // A client certificate that fails verification is only seen in authorizationError: Node completes
      // the handshake, then destroys the socket, so the error itself is a plain ECONNRESET.
      const authorizationError = socket.authorizationError as unknown as string | null
      const refusal = { code: error.code, authorizationError: authorizationError ?? undefined }
      const waiter = waiters.shift()
      if (waiter) waiter(refusal)
      else refusals.push(refusal)
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const { port } = server.address() as net.AddressInfo
    return {
      host,
      port,
      accepted,
      nextRefusal: () => {
        const queued = refusals.shift()
        if (queued) return Promise.resolve(queued)
        return new Promise((resolve) => waiters.push(resolve))
      },
    }
  }

  /** Connects, waits for the server's greeting and the end of the stream; rejects with the socket error. */
  connect(options: tls.ConnectionOptions): Promise<Exchange> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect(options)
      this.#track(socket)
      let greeting = ''
      let secure = false
      socket.setEncoding('utf8')
      socket.on('secureConnect', () => {
        secure = true
      })
      socket.on('data', (chunk: string) => {
        greeting += chunk
      })
      socket.on('error', reject)
      socket.on('end', () => {
        socket.end()
        if (secure && greeting.length > 0) {
          resolve({ authorized: socket.authorized, protocol: socket.getProtocol(), greeting })
        } else {
          reject(new Error(`connection ended without a greeting (handshake done: ${secure})`))
        }
      })
      socket.on('close', () => reject(new Error('connection closed before it ended cleanly')))
    })
  }

  async closeAll(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
    const servers = [...this.#servers]
    this.#servers.clear()
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
  }

  #track(socket: net.Socket): void {
    this.#sockets.add(socket)
    socket.once('close', () => this.#sockets.delete(socket))
  }
}

/** Whether this machine can bind a loopback address (IPv6 is disabled on some CI hosts and containers). */
export async function canListenOn(host: string): Promise<boolean> {
  const server = net.createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, host, resolve)
    })
    return true
  } catch {
    return false
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
