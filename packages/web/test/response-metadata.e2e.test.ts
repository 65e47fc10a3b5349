import { createServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import {
  type Capabilities,
  ControlKind,
  decodeControl,
  encodeControl,
  encodeFrame,
  encodeMetadata,
  Flags,
  type Frame,
  FrameDecoder,
} from '@srpc/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { type WebSocket, WebSocketServer } from 'ws'
import { Code } from '../src/index'
import { certificates, errorOf, Harness, text } from './harness'

// Response metadata (docs/protocol.md 7.12, the `response-metadata` feature of @srpc/contract's
// branch) is spoken here by a scripted server over real wss: this client must read it where it
// was agreed, and refuse it where it was not.

const h = new Harness()
let https: HttpsServer | undefined
let wss: WebSocketServer | undefined
afterEach(async () => {
  await h.cleanup()
  for (const ws of wss?.clients ?? []) ws.terminate()
  wss?.close()
  if (https) await new Promise((resolve) => https!.close(resolve))
  https = wss = undefined
})

const block = (entries: Record<string, string>) => encodeMetadata(entries)

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

/** A scripted srpc server: answers HELLO with `features`, then `answer(frame, send)` per call frame. */
async function scripted(
  features: string[],
  answer: (frame: Frame, send: (bytes: Uint8Array) => void) => void,
): Promise<string> {
  const { serverOptions } = await certificates()
  https = createServer(serverOptions)
  wss = new WebSocketServer({ server: https })
  wss.on('connection', (ws: WebSocket) => {
    const decoder = new FrameDecoder()
    const send = (bytes: Uint8Array) => ws.send(bytes)
    ws.on('message', (data: Buffer) => {
      decoder.push(new Uint8Array(data), (frame) => {
        if (frame.flags === Flags.CONTROL) {
          const message = decodeControl(frame)
          if (message?.kind === ControlKind.HELLO) {
            const capabilities: Capabilities = { version: 1, features, initialWindow: 1 << 20 }
            send(encodeControl(0, { kind: ControlKind.HELLO, capabilities }))
          }
          return
        }
        answer(frame, send)
      })
    })
  })
  await new Promise<void>((resolve) => https!.listen(0, '127.0.0.1', resolve))
  return `wss://127.0.0.1:${(https.address() as AddressInfo).port}/srpc`
}

describe('response metadata from the server', () => {
  it('is read from a reply (0x82) and from a stream end marker (0x8e) where agreed', async () => {
    const url = await scripted(['metadata', 'flow', 'response-metadata'], (frame, send) => {
      if (frame.type === '/get') {
        send(
          encodeFrame(
            Flags.RESPONSE | Flags.METADATA,
            frame.id,
            '',
            concat(block({ 'x-cache': 'hit' }), frame.value),
          ),
        )
      } else if (frame.type === '/list') {
        send(encodeFrame(Flags.RESPONSE | Flags.STREAM, frame.id, '', new TextEncoder().encode('one')))
        send(
          encodeFrame(
            Flags.RESPONSE | Flags.STREAM | Flags.STREAM_END | Flags.METADATA,
            frame.id,
            '',
            block({ 'x-total': '1' }),
          ),
        )
      }
    })
    const client = await h.client(url)
    let seen: Record<string, string> | undefined
    const reply = await client.call('/get', 'ok', { onResponseMetadata: (m) => (seen = { ...m }) })
    expect(text(reply)).toBe('ok')
    expect(seen).toEqual({ 'x-cache': 'hit' })
    const stream = client.callStream('/list')
    const chunks: string[] = []
    for await (const chunk of stream) chunks.push(text(chunk)!)
    expect(chunks).toEqual(['one'])
    expect({ ...stream.responseMetadata }).toEqual({ 'x-total': '1' })
  })

  it('is a protocol error where it was not agreed: the connection fails', async () => {
    const url = await scripted(['metadata', 'flow'], (frame, send) => {
      send(encodeFrame(Flags.RESPONSE | Flags.METADATA, frame.id, '', concat(block({ a: 'b' }), frame.value)))
    })
    const client = await h.client(url, { reconnect: false })
    const error = await errorOf(client.call('/get', 'ok', { waitForExtensions: true }))
    expect(error.code).toBe(Code.UNAVAILABLE)
    expect(error.message).toMatch(/metadata where none was agreed/)
  })
})
