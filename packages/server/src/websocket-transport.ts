import type { IncomingHttpHeaders } from 'node:http'
import type { Socket } from 'node:net'
import type { Transport, TransportHandlers, TransportPeer, TransportState } from '@srpc/core'
import type { WebSocket } from 'ws'

/** Close code for a text message: srpc frames travel in binary messages only (RFC 6455 1003). */
const UNSUPPORTED_DATA = 1003

/**
 * An accepted WebSocket as a Transport: each binary message is a run of srpc frame bytes (the
 * frame decoder above does not care where messages split), each `write()` one binary message.
 * Backpressure is the socket's own: `write()` returns false while the socket under the
 * WebSocket needs a drain, and `onDrain` follows its `drain` event, so a client that stops
 * reading stops the server's writers exactly as over TLS.
 */
export class WebSocketTransport implements Transport {
  readonly peer: TransportPeer
  #ws: WebSocket
  #socket: Socket
  #error: Error | undefined
  #handlers: TransportHandlers | undefined
  #closed = false
  #ending = false

  constructor(ws: WebSocket, socket: Socket, headers: IncomingHttpHeaders) {
    this.#ws = ws
    this.#socket = socket
    socket.setNoDelay(true)
    this.peer = {
      transport: 'websocket',
      address: socket.remoteAddress,
      port: socket.remotePort,
      authorized: false,
      headers,
    }
    // Recorded from the start, so an error before start() is neither unhandled nor lost.
    ws.on('error', (err) => {
      if (this.#error === undefined) this.#error = err
    })
    ws.on('close', (code: number) => {
      // 1006: the TCP connection went without a closing handshake (a reset, a crash, a cut cable).
      if (code === 1006 && this.#error === undefined) {
        this.#error = Object.assign(new Error('WebSocket connection lost without a close frame'), {
          code: 'ECONNRESET',
        })
      }
      this.#onClose()
    })
  }

  get state(): TransportState {
    if (this.#closed) return 'closed'
    return this.#ending || this.#ws.readyState !== 1 ? 'ending' : 'open'
  }

  start(handlers: TransportHandlers): void {
    this.#handlers = handlers
    if (this.#closed) {
      process.nextTick(() => handlers.onClose(this.#error))
      return
    }
    this.#ws.on('message', (data, isBinary) => {
      if (!isBinary) {
        if (this.#error === undefined) this.#error = new Error('text message on an srpc WebSocket')
        this.#ws.close(UNSUPPORTED_DATA, 'srpc frames travel in binary messages')
        return
      }
      handlers.onData(data as Buffer)
    })
    this.#socket.on('drain', handlers.onDrain)
  }

  write(chunk: Uint8Array, written?: (err?: Error | null) => void): boolean {
    if (this.#closed || this.#ending) {
      if (written) process.nextTick(written, new Error('write after the WebSocket closed'))
      return false
    }
    this.#ws.send(chunk, { binary: true, compress: false, fin: true }, written)
    return !this.#socket.writableNeedDrain
  }

  cork(): void {
    this.#socket.cork()
  }

  uncork(): void {
    this.#socket.uncork()
  }

  pause(): void {
    this.#ws.pause()
  }

  resume(): void {
    this.#ws.resume()
  }

  close(): void {
    if (this.#closed || this.#ending) return
    this.#ending = true
    // A close frame after what was written; ws destroys the socket if the peer never answers it.
    this.#ws.close(1000)
  }

  destroy(error?: Error): void {
    if (error !== undefined && this.#error === undefined) this.#error = error
    this.#ws.terminate()
  }

  #onClose(): void {
    if (this.#closed) return
    this.#closed = true
    const handlers = this.#handlers
    if (handlers === undefined) return
    // A WebSocket has no half-close: its end and its close are one event.
    if (this.#error === undefined) handlers.onEnd()
    handlers.onClose(this.#error)
  }
}
