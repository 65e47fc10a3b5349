import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { createServer, type TLSSocket } from 'node:tls'
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import { serverTlsOptions } from '@srpc/tlsutil'
import type { ServerJob } from '../messages'
import { decodeStreamRequest, maybeCorrupt, SinkChecker, streamChunk } from '../payloads'
import { drained } from '../util'
import { RAW_DEFLATE_LEVEL } from './compression'
import { FrameReader, frameHeader, isRawMode, RawMode } from './raw-framing'
import type { TargetServer, Warn } from './server-target'

/**
 * The ceiling: node:tls and nothing else. Echo replies are written inside one cork per read, so
 * replies to pipelined requests leave in one write, and reading pauses while the socket is
 * backed up.
 */
const DEFLATE = { level: RAW_DEFLATE_LEVEL }

export async function startRawServer(job: ServerJob, warn: Warn): Promise<TargetServer> {
  const sockets = new Set<TLSSocket>()
  const server = createServer(serverTlsOptions({ key: job.key, cert: job.cert, ca: job.ca }), (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    serve(socket, warn)
  })
  server.on('tlsClientError', (err) => warn(`raw: TLS client error: ${err.message}`))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    port,
    close: async (timeoutMs) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      for (const socket of sockets) socket.end()
      const timer = setTimeout(() => {
        for (const socket of sockets) socket.destroy()
      }, timeoutMs)
      await closed
      clearTimeout(timer)
    },
  }
}

function serve(socket: TLSSocket, warn: Warn): void {
  socket.setNoDelay(true)
  const reader = new FrameReader()
  let mode: RawMode | undefined
  let streaming = false
  const sink = new SinkChecker()
  const fail = (message: string) => {
    warn(`raw: ${message}`)
    socket.destroy()
  }
  const writeFrame = (payload: Buffer): boolean => {
    socket.write(frameHeader(payload.length))
    return socket.write(payload)
  }
  const onFrame = (payload: Buffer) => {
    switch (mode) {
      case RawMode.ECHO:
        writeFrame(maybeCorrupt(payload))
        return
      case RawMode.DEFLATE_ECHO:
        writeFrame(deflateRawSync(maybeCorrupt(inflateRawSync(payload)), DEFLATE))
        return
      case RawMode.SINK:
        if (payload.length === 0) {
          writeFrame(sink.summary())
          socket.end()
        } else {
          sink.accept(payload)
        }
        return
      case RawMode.STREAM: {
        if (streaming) return fail('stream request while a stream is running')
        const { count, size } = decodeStreamRequest(payload)
        streaming = true
        sendStream(count, size).then(
          () => {
            streaming = false
          },
          (err: Error) => fail(`stream failed: ${err.message}`),
        )
        return
      }
    }
  }
  const sendStream = async (count: number, size: number) => {
    for (let i = 0; i < count; i++) {
      if (socket.destroyed) throw new Error('socket closed mid-stream')
      const frame = streamChunk(i, size, 4)
      frame.writeUInt32BE(size, 0)
      if (!socket.write(frame)) await drained(socket)
    }
  }
  socket.on('data', (chunk: Buffer) => {
    if (mode === undefined) {
      const byte = chunk[0]
      if (!isRawMode(byte)) return fail(`unknown mode byte ${byte}`)
      mode = byte
      chunk = chunk.subarray(1)
      if (chunk.length === 0) return
    }
    socket.cork()
    try {
      reader.push(chunk, onFrame)
    } catch (err) {
      fail((err as Error).message)
    } finally {
      socket.uncork()
    }
    // Backpressure: stop reading requests until the replies have gone out.
    if (socket.writableNeedDrain && mode !== RawMode.STREAM) {
      socket.pause()
      socket.once('drain', () => socket.resume())
    }
  })
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') warn(`raw: socket error: ${err.message}`)
  })
}
