import type { Server as HttpServer, IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { parseAddress } from '@srpc/core'
import { Code, invalidOption, RpcError } from '@srpc/protocol'
import type { ServerLifecycle, Stoppable } from './lifecycle'
import type { ResolvedServerOptions } from './options'
import { WebSocketTransport } from './websocket-transport'

/** Sockets beyond maxConnections the listener accepts, to answer page requests and refusals (503). */
const SOCKET_HEADROOM = 64

/** Where browsers reach srpc unless told otherwise. */
export const DEFAULT_WEBSOCKET_PATH = '/srpc'

/** Who may open a WebSocket: exact origins, `'*'` for anyone, or a function that decides. */
export type OriginPolicy = readonly string[] | '*' | ((origin: string, request: IncomingMessage) => boolean)

export interface WebSocketListenOptions {
  /** `host:port` of the HTTPS listener; port 0 picks a free port. Default: the server's host, port 0. */
  address?: string
  /** The path browsers connect to (`wss://host:port/srpc`); other paths get 404. Default `/srpc`. */
  path?: string
  /**
   * The `Origin` header values that may open a WebSocket, checked before the upgrade (cross-site
   * WebSocket hijacking: a browser sends the user's cookies to any site's WebSocket). An array of
   * exact origins (`'https://app.example.com'`), `'*'` for anyone, or a function. Default: the
   * page's own origin only (Origin host equals the Host header). A request without `Origin` comes
   * from a non-browser client (Node's `ws`, curl), which no page can drive, and is let in.
   */
  allowedOrigins?: OriginPolicy
  /**
   * Listens with plain HTTP instead of HTTPS, for a TLS-terminating proxy in front of the server.
   * Without such a proxy, every byte (cookies included) crosses the network in clear.
   */
  dangerouslyUsePlainHttp?: boolean
  /**
   * Answers ordinary HTTP requests on the same listener (a page and its script, so they share
   * the WebSocket's origin). Without it they get 426 Upgrade Required. A throw answers 500.
   */
  onRequest?: (request: IncomingMessage, response: ServerResponse) => void
}

/** What the listener needs of its Server: kept narrow so server.ts only delegates. */
export interface WebSocketHost {
  readonly options: ResolvedServerOptions
  readonly lifecycle: ServerLifecycle<Stoppable>
  accept(transport: WebSocketTransport): void
  clientError(error: Error): void
  error(error: Error): void
}

/**
 * Starts the HTTPS (or, when asked, plain HTTP) listener that upgrades requests on `path` to
 * WebSockets and serves each as an srpc connection through `accept()`. `ws` is imported on the
 * first call only, so a server that never listens for browsers never loads it.
 */
export async function listenWebSocket(
  host: WebSocketHost,
  options: WebSocketListenOptions = {},
): Promise<{ address: string; port: number; url: string }> {
  const resolved = resolveWebSocketOptions(options, host.options)
  const tls = host.options.tls
  if (!resolved.plain && tls === undefined) {
    invalidOption(
      'tls',
      'is required to listen for WebSockets over HTTPS (or set dangerouslyUsePlainHttp behind a TLS proxy)',
    )
  }
  const { WebSocketServer } = await import('ws')
  const wss = new WebSocketServer({
    noServer: true,
    // A message never needs to be larger than one frame: the client sends at most one frame's
    // worth per message, and a larger one is refused by ws (close 1009) before it is buffered whole.
    maxPayload: host.options.maxFrameSize,
    perMessageDeflate: false,
    clientTracking: false,
  })
  const handshakeTimeout = host.options.handshakeTimeout
  const serverOptions = {
    // The HTTP request must arrive within the handshake time too (slowloris).
    headersTimeout: handshakeTimeout,
    requestTimeout: handshakeTimeout,
    connectionsCheckingInterval: Math.min(1000, handshakeTimeout),
  }
  let server: HttpServer
  if (resolved.plain) {
    const { createServer } = await import('node:http')
    server = createServer(serverOptions)
  } else {
    const { createServer } = await import('node:https')
    server = createServer({ minVersion: 'TLSv1.2', ...tls, handshakeTimeout, ...serverOptions })
    server.on('tlsClientError', (err: Error, socket: Socket) => {
      socket.destroy()
      host.clientError(err)
    })
  }
  // A socket idle this long (no HTTP request yet, or an idle page connection) is dropped;
  // upgraded sockets leave this timer (see 'upgrade') for srpc's own idle and keepalive checks.
  server.timeout = handshakeTimeout
  // A hard cap on sockets, pages and refusals included; srpc connections past maxConnections get 503.
  server.maxConnections = host.options.maxConnections + SOCKET_HEADROOM
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // The status Node's own server would send (408 for a request that did not arrive within the
    // handshake time), and only while nothing else was written on this socket.
    if (socket.writable && socket.bytesWritten === 0) {
      socket.write(refusalHead(...clientErrorStatus(err.code)))
    }
    socket.destroy()
    host.clientError(err)
  })
  server.on('request', (request: IncomingMessage, response: ServerResponse) => {
    if (resolved.onRequest === undefined) {
      response.writeHead(426, { 'content-type': 'text/plain', upgrade: 'websocket', connection: 'Upgrade' })
      response.end(`srpc speaks WebSocket on ${resolved.path}\n`)
      return
    }
    try {
      resolved.onRequest(request, response)
    } catch (err) {
      host.error(err instanceof Error ? err : new Error(String(err)))
      if (!response.headersSent) response.writeHead(500)
      response.end()
    }
  })
  server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    // A reset during the upgrade must not become an uncaught 'error'.
    socket.on('error', () => {})
    socket.setTimeout(0)
    const refusal = refusalOf(request, resolved, host)
    if (refusal !== undefined) {
      reject(socket, refusal[0], refusal[1])
      return
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      host.accept(new WebSocketTransport(ws, socket, request.headers))
    })
  })
  const listener = {
    close(callback: () => void) {
      server.close(() => callback())
      // Page requests, idle or not; upgraded sockets are the connections' to close.
      server.closeAllConnections()
    },
  }
  host.lifecycle.attach(listener)
  return new Promise((resolve, rejectListen) => {
    const onError = (err: Error) => {
      host.lifecycle.detach(listener)
      rejectListen(
        new RpcError(Code.UNAVAILABLE, `cannot listen on ${resolved.host}:${resolved.port}: ${err.message}`, {
          cause: err,
        }),
      )
    }
    server.once('error', onError)
    server.listen(resolved.port, resolved.host, () => {
      server.off('error', onError)
      server.on('error', (err) => host.error(err))
      host.lifecycle.listening()
      const { address, port } = server.address() as AddressInfo
      const shown = address.includes(':') ? `[${address}]` : address
      resolve({ address, port, url: `${resolved.plain ? 'ws' : 'wss'}://${shown}:${port}${resolved.path}` })
    })
  })
}

interface ResolvedWebSocketOptions {
  host: string
  port: number
  path: string
  plain: boolean
  isAllowed: (origin: string, request: IncomingMessage) => boolean
  onRequest: ((request: IncomingMessage, response: ServerResponse) => void) | undefined
}

function resolveWebSocketOptions(
  options: WebSocketListenOptions,
  server: ResolvedServerOptions,
): ResolvedWebSocketOptions {
  if (options === null || typeof options !== 'object') invalidOption('options', 'must be an object')
  const { host, port } = parseAddress(options.address ?? `${bracket(server.host)}:0`, 'listen')
  const path = options.path ?? DEFAULT_WEBSOCKET_PATH
  if (typeof path !== 'string' || !path.startsWith('/'))
    invalidOption('path', `must start with /, got ${path}`)
  const plain = options.dangerouslyUsePlainHttp ?? false
  if (typeof plain !== 'boolean') invalidOption('dangerouslyUsePlainHttp', 'must be a boolean')
  if (options.onRequest !== undefined && typeof options.onRequest !== 'function')
    invalidOption('onRequest', 'must be a function')
  return {
    host,
    port,
    path,
    plain,
    isAllowed: originPolicy(options.allowedOrigins),
    onRequest: options.onRequest,
  }
}

function originPolicy(policy: OriginPolicy | undefined): ResolvedWebSocketOptions['isAllowed'] {
  if (policy === undefined) return sameOrigin
  if (policy === '*') return () => true
  if (typeof policy === 'function') return policy
  if (!Array.isArray(policy) || policy.some((origin) => typeof origin !== 'string'))
    invalidOption('allowedOrigins', "must be an array of origins, '*' or a function")
  const allowed = new Set(policy.map((origin) => origin.toLowerCase()))
  return (origin) => allowed.has(origin.toLowerCase())
}

/** The page's own origin: what a browser sends when the page and the WebSocket share host and port. */
function sameOrigin(origin: string, request: IncomingMessage): boolean {
  try {
    return new URL(origin).host === request.headers.host?.toLowerCase()
  } catch {
    return false
  }
}

/** Why an upgrade request is turned away, as an HTTP status and text; undefined to let it in. */
function refusalOf(
  request: IncomingMessage,
  options: ResolvedWebSocketOptions,
  host: WebSocketHost,
): [number, string] | undefined {
  const pathname = (request.url ?? '').split('?', 1)[0]
  if (pathname !== options.path) return [404, 'Not Found']
  const origin = request.headers.origin
  // The origin is checked before anything else about the client: a foreign page learns nothing.
  if (origin !== undefined) {
    let allowed = false
    try {
      allowed = options.isAllowed(origin, request) === true
    } catch (err) {
      host.error(err instanceof Error ? err : new Error(String(err)))
    }
    if (!allowed) return [403, 'Forbidden']
  }
  if (host.lifecycle.draining) return [503, 'Service Unavailable']
  if (host.lifecycle.size >= host.options.maxConnections) return [503, 'Service Unavailable']
  return undefined
}

function reject(socket: Socket, status: number, text: string): void {
  if (socket.writable) {
    socket.end(refusalHead(status, text))
  }
  // A client that never reads the refusal does not keep its socket.
  setTimeout(() => socket.destroy(), 1000).unref()
}

/** An empty HTTP response that closes the connection. */
function refusalHead(status: number, text: string): string {
  return `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`
}

/** The HTTP status for an error of Node's HTTP parser or server before a request was complete. */
function clientErrorStatus(code: string | undefined): [number, string] {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'Request Timeout']
  if (code === 'HPE_HEADER_OVERFLOW') return [431, 'Request Header Fields Too Large']
  return [400, 'Bad Request']
}

function bracket(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
