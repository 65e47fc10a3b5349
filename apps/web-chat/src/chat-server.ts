import { readFile } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, join, normalize } from 'node:path'
import { fileURLToPath } from 'node:url'
import { implement } from '@srpc/contract'
import { type Context, Server, type ServerOptions } from '@srpc/server'
import { ChatContract } from './chat-contract'
import { ChatRoom } from './chat-room'

/** The page and its scripts: `public/` (HTML) and `dist/public/` (bundled TypeScript). */
const ROOTS = [
  fileURLToPath(new URL('../public/', import.meta.url)),
  fileURLToPath(new URL('../dist/public/', import.meta.url)),
]
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.css': 'text/css',
}

export interface ChatServer {
  server: Server
  room: ChatRoom
  /** `https://…/` of the page. */
  pageUrl: string
  /** `wss://…/srpc` the page connects to (same origin). */
  webSocketUrl: string
  /** The port of the WebSocket listener. */
  webPort: number
  /** The TLS listener's port for Node members, when `tlsAddress` was given. */
  tlsPort: number | undefined
}

/**
 * The chat server: one srpc Server implementing ChatContract, the room (`/chat/join`) and two
 * demo methods for a page (`/chat/ticks`, a server stream; `/chat/echo`), listening for browsers with `listenWebSocket()` (which
 * also serves the page, so page and WebSocket share an origin), and, when `tlsAddress` is given,
 * for Node clients over TLS.
 */
export async function startChatServer(options: {
  tls: ServerOptions['tls']
  webAddress: string
  tlsAddress?: string
  allowedOrigins?: readonly string[]
  onTick?: (ctx: Context) => void
}): Promise<ChatServer> {
  const server = new Server({ address: options.tlsAddress ?? '127.0.0.1:0', tls: options.tls })
  const room = new ChatRoom()
  implement(server, ChatContract, {
    join: (session, ctx) => room.serve(session, ctx),
    ticks: async function* ({ count }, ctx) {
      options.onTick?.(ctx)
      for (let n = 1; n <= count && !ctx.signal.aborted; n++) {
        yield { n }
        if (n < count) await new Promise((resolve) => setTimeout(resolve, 20))
      }
    },
    echo: (payload) => payload,
  })
  const { url, port, address } = await server.listenWebSocket({
    address: options.webAddress,
    allowedOrigins: options.allowedOrigins,
    onRequest: (request, response) => void serveStatic(request, response),
  })
  const tlsPort = options.tlsAddress === undefined ? undefined : (await server.listen()).port
  const host = address.includes(':') ? `[${address}]` : address
  return { server, room, pageUrl: `https://${host}:${port}/`, webSocketUrl: url, webPort: port, tlsPort }
}

async function serveStatic(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'https://x').pathname
  const name = normalize(path === '/' ? '/index.html' : path).replace(/^([/\\])+/, '')
  if (name.includes('..') || request.method !== 'GET') {
    response.writeHead(404).end()
    return
  }
  for (const root of ROOTS) {
    try {
      const body = await readFile(join(root, name))
      response.writeHead(200, {
        'content-type': TYPES[extname(name)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
      })
      response.end(body)
      return
    } catch {
      // try the next root
    }
  }
  response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
}
