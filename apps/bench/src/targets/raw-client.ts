import { connect, type TLSSocket } from 'node:tls'
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { clientTlsOptions } from '@srpc/tlsutil'
import { encodeStreamRequest } from '../payloads'
import { BoundedQueue, drained } from '../util'
import type { BenchClient, BenchSession, Done, OpenOptions } from './client-target'
import { RAW_DEFLATE_LEVEL } from './compression'
import { MessageInbox } from './message-inbox'
import { FrameReader, frameHeader, RawMode } from './raw-framing'

const DEFLATE = { level: RAW_DEFLATE_LEVEL }
const RESOLVED = Promise.resolve()
const CONNECT_TIMEOUT_MS = 10_000
/** Calls one raw connection may have outstanding; far above any scenario's window. */
const MAX_PENDING = 65_536

interface StreamState {
  remaining: number
  onChunk: (chunk: Buffer) => void
  resolve: () => void
  reject: (err: Error) => void
}

/**
 * One raw TLS connection. Writes made in one tick leave in one batch (cork, uncork on the next
 * tick), like srpc's; replies are matched to requests by order, with a FIFO of callbacks.
 */
class RawConnection {
  readonly socket: TLSSocket
  readonly mode: RawMode
  #reader = new FrameReader()
  #pending = new BoundedQueue<Done>(MAX_PENDING)
  #corked = false
  #uncork = () => {
    this.#corked = false
    this.socket.uncork()
  }
  #stream: StreamState | undefined
  #inbox: MessageInbox | undefined
  #error: Error | undefined

  static open(port: number, ca: string, mode: RawMode): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ...clientTlsOptions(ca) })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`raw connect timed out after ${CONNECT_TIMEOUT_MS} ms`))
      }, CONNECT_TIMEOUT_MS)
      socket.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      socket.once('secureConnect', () => {
        clearTimeout(timer)
        resolve(new RawConnection(socket, mode))
      })
    })
  }

  constructor(socket: TLSSocket, mode: RawMode) {
    this.socket = socket
    this.mode = mode
    socket.setNoDelay(true)
    socket.write(Buffer.of(mode))
    socket.on('data', (chunk: Buffer) => {
      try {
        this.#reader.push(chunk, (frame) => this.#onFrame(frame))
      } catch (err) {
        this.#fail(err as Error)
        socket.destroy()
      }
    })
    socket.on('error', (err) => this.#fail(err))
    socket.on('close', () => this.#fail(new Error('raw connection closed')))
  }

  get inbox(): MessageInbox {
    this.#inbox ??= new MessageInbox()
    return this.#inbox
  }

  writeFrame(payload: Buffer): boolean {
    if (!this.#corked) {
      this.#corked = true
      this.socket.cork()
      process.nextTick(this.#uncork)
    }
    this.socket.write(frameHeader(payload.length))
    return this.socket.write(payload)
  }

  call(request: Buffer, done: Done): void {
    if (this.#error) return done(this.#error, undefined)
    this.#pending.push(done)
    this.writeFrame(this.mode === RawMode.DEFLATE_ECHO ? deflateRawSync(request, DEFLATE) : request)
  }

  stream(count: number, size: number, onChunk: (chunk: Buffer) => void): Promise<void> {
    if (this.#error) return Promise.reject(this.#error)
    if (this.#stream) return Promise.reject(new Error('a stream is already running on this connection'))
    if (count === 0) return RESOLVED
    return new Promise((resolve, reject) => {
      this.#stream = { remaining: count, onChunk, resolve, reject }
      this.writeFrame(encodeStreamRequest(count, size))
    })
  }

  #onFrame(frame: Buffer): void {
    if (this.#inbox) return this.#inbox.push(frame)
    const stream = this.#stream
    if (stream) {
      stream.onChunk(frame)
      if (--stream.remaining === 0) {
        this.#stream = undefined
        stream.resolve()
      }
      return
    }
    const done = this.#pending.shift()
    if (done === undefined) throw new Error('raw reply with no request waiting')
    if (this.mode === RawMode.DEFLATE_ECHO) {
      let reply: Buffer
      try {
        reply = inflateRawSync(frame)
      } catch (err) {
        return done(err as Error, undefined)
      }
      return done(undefined, reply)
    }
    done(undefined, frame)
  }

  #fail(err: Error): void {
    if (this.#error) return
    this.#error = err
    for (const done of this.#pending.drain()) done(err, undefined)
    const stream = this.#stream
    this.#stream = undefined
    stream?.reject(err)
    this.#inbox?.fail(err)
  }

  close(): Promise<void> {
    if (this.socket.destroyed) return RESOLVED
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve())
      this.socket.end()
      setTimeout(() => this.socket.destroy(), 2000).unref()
    })
  }
}

function rawSession(connection: RawConnection, kind: 'echo' | 'sink'): BenchSession {
  const inbox = connection.inbox
  return {
    send(message) {
      return connection.writeFrame(message) ? RESOLVED : drained(connection.socket)
    },
    receive: () => inbox.receive(),
    end() {
      // The sink's end marker is an empty frame; an echo session just closes.
      if (kind === 'sink') connection.writeFrame(Buffer.alloc(0))
      else connection.socket.end()
    },
  }
}

export async function openRawClient(options: OpenOptions): Promise<BenchClient> {
  const mode =
    options.purpose === 'stream'
      ? RawMode.STREAM
      : options.compression === 'on'
        ? RawMode.DEFLATE_ECHO
        : RawMode.ECHO
  const connections = await Promise.all(
    Array.from({ length: options.size }, () => RawConnection.open(options.port, options.ca, mode)),
  )
  const sessions: RawConnection[] = []
  let next = 0
  const pick = () => connections[next++ % connections.length]
  return {
    call: (request, done) => pick().call(request, done),
    stream: (count, size, onChunk) => pick().stream(count, size, onChunk),
    async openSession(kind) {
      const connection = await RawConnection.open(
        options.port,
        options.ca,
        kind === 'sink' ? RawMode.SINK : RawMode.ECHO,
      )
      sessions.push(connection)
      return rawSession(connection, kind)
    },
    close: async () => {
      await Promise.all([...connections, ...sessions].map((c) => c.close()))
    },
  }
}
