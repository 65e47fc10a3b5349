import { Code, formatMs, RpcError } from '@srpc/protocol'

/** The part of the standard WebSocket the client uses: browsers, Node 22+, Deno, Bun and `ws`. */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  readonly bufferedAmount: number
  send(data: Uint8Array): void
  close(code?: number, reason?: string): void
  onopen: ((event: unknown) => void) | null
  onmessage: ((event: { data: unknown }) => void) | null
  onclose: ((event: { code: number; reason: string; wasClean?: boolean }) => void) | null
  onerror: ((event: unknown) => void) | null
}

/** How to make one: `globalThis.WebSocket`, or `ws`'s class (or a subclass passing TLS options) on Node 20. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

const OPEN = 1

/** What a link tells its connection. */
export interface LinkHandlers {
  onData(bytes: Uint8Array): void
  /** The WebSocket closed; `error` is set unless it closed cleanly (code 1000/1001). */
  onClose(error: RpcError | undefined): void
}

/**
 * One open WebSocket carrying srpc frames in binary messages. Browsers give no backpressure
 * signal but `bufferedAmount`, so senders ask `backedUp` and poll until it clears.
 */
export class WebSocketLink {
  readonly url: string
  #ws: WebSocketLike
  #handlers: LinkHandlers | undefined
  #closed = false

  constructor(url: string, ws: WebSocketLike) {
    this.url = url
    this.#ws = ws
  }

  get open(): boolean {
    return !this.#closed && this.#ws.readyState === OPEN
  }

  get bufferedAmount(): number {
    return this.#ws.bufferedAmount
  }

  start(handlers: LinkHandlers): void {
    this.#handlers = handlers
    const ws = this.#ws
    ws.onmessage = (event) => {
      const data = event.data
      if (data instanceof ArrayBuffer) handlers.onData(new Uint8Array(data))
      else if (ArrayBuffer.isView(data))
        handlers.onData(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
      else
        this.#fail(
          new RpcError(Code.PROTOCOL_ERROR, 'the server sent a text message; srpc frames are binary'),
        )
    }
    ws.onclose = (event) => {
      const clean = event.code === 1000 || event.code === 1001
      this.#finish(
        clean
          ? undefined
          : new RpcError(
              Code.UNAVAILABLE,
              `WebSocket closed with code ${event.code}${event.reason ? `: ${event.reason}` : ''}`,
            ),
      )
    }
    ws.onerror = () => {}
  }

  send(bytes: Uint8Array): void {
    if (this.open) this.#ws.send(bytes)
  }

  /** Closes with code 1000 (or 1002 for a protocol error); onClose follows once the socket is gone. */
  close(error?: RpcError): void {
    if (this.#closed) return
    try {
      if (error?.code === Code.PROTOCOL_ERROR) this.#ws.close(1002, error.message.slice(0, 120))
      else this.#ws.close(1000)
    } catch {
      // already closing
    }
    // Some runtimes report a close only after the peer answers; no caller waits for that.
    this.#finish(error)
  }

  #fail(error: RpcError): void {
    this.close(error)
  }

  #finish(error: RpcError | undefined): void {
    if (this.#closed) return
    this.#closed = true
    const ws = this.#ws
    ws.onmessage = null
    ws.onclose = null
    this.#handlers?.onClose(error)
  }
}

/**
 * Opens a WebSocket to `url` within `timeout` ms: UNAVAILABLE when it fails or times out
 * (browsers do not say why, for privacy: a refused origin, a bad certificate and a closed port
 * look the same), CANCELLED when `signal` aborts.
 */
export function openLink(
  url: string,
  WebSocketClass: WebSocketConstructor,
  timeout: number,
  signal?: AbortSignal,
): Promise<WebSocketLink> {
  return new Promise((resolve, reject) => {
    let ws: WebSocketLike
    try {
      ws = new WebSocketClass(url)
    } catch (err) {
      reject(
        new RpcError(Code.INVALID_ARGUMENT, `cannot open a WebSocket to ${url}: ${(err as Error).message}`),
      )
      return
    }
    ws.binaryType = 'arraybuffer'
    const settle = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      ws.onopen = null
      ws.onclose = null
      ws.onerror = null
    }
    const fail = (error: RpcError) => {
      settle()
      // Closed as soon as it opens, if it still does.
      ws.onopen = () => ws.close()
      try {
        ws.close()
      } catch {
        // not open yet: the runtime drops it
      }
      reject(error)
    }
    const onAbort = () => fail(new RpcError(Code.CANCELLED, 'connection attempt cancelled'))
    const timer = setTimeout(
      () =>
        fail(
          new RpcError(Code.UNAVAILABLE, `cannot connect to ${url}: timed out after ${formatMs(timeout)}`),
        ),
      timeout,
    )
    signal?.addEventListener('abort', onAbort, { once: true })
    ws.onerror = () => {}
    ws.onclose = (event) =>
      fail(
        new RpcError(Code.UNAVAILABLE, `cannot connect to ${url} (WebSocket closed with code ${event.code})`),
      )
    ws.onopen = () => {
      settle()
      resolve(new WebSocketLink(url, ws))
    }
  })
}
