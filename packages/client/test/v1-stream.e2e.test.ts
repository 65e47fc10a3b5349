import type { AddressInfo } from 'node:net'
import { createServer, type Server, type TLSSocket } from 'node:tls'
import { deflateRawSync } from 'node:zlib'
import type { Frame } from '@srpc/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { Code, type Pool, RpcError } from '../src/index'
import { certificates, Harness } from './harness'
import { StubServer } from './v1-stub-server'

const h = new Harness()
const stubs: StubServer[] = []
const docsServers: DocsServer[] = []
afterEach(async () => {
  await h.cleanup()
  await Promise.all(stubs.splice(0).map((s) => s.stop()))
  await Promise.all(docsServers.splice(0).map((s) => s.stop()))
})

/**
 * A raw server that answers each stream request with the frames of `answers[route]`, written
 * as hex exactly as they go on the wire; `ID` stands for the request's 8-byte id.
 */
async function rawServer(answers: Record<string, string[]>, negotiate = false): Promise<Pool> {
  const stub = new StubServer((frame: Frame, socket: TLSSocket) => {
    const id = BigInt(frame.id).toString(16).padStart(16, '0')
    for (const hex of answers[frame.type] ?? []) socket.write(Buffer.from(hex.replace('ID', id), 'hex'))
  }, negotiate)
  stubs.push(stub)
  return h.pool(await stub.start(), { helloTimeout: 100 })
}

async function chunksOf(pool: Pool, route: string): Promise<string[]> {
  const chunks: string[] = []
  for await (const chunk of pool.callStream(route, '', { timeout: 2000 })) chunks.push(chunk.toString())
  return chunks
}

describe('a stream from a raw server', () => {
  it('reads RESPONSE|STREAM (0x06) chunks ended by 0x0e, with or without a chunk on the end', async () => {
    const pool = await rawServer({
      '/last-chunk': [
        '0106ID000000000002' + '7431', // RESPONSE|STREAM "t1"
        '010eID000000000002' + '7432', // RESPONSE|STREAM|STREAM_END "t2"
      ],
      '/bare-end': [
        '0106ID000000000002' + '7431',
        '0106ID000000000002' + '7432',
        '010eID000000000000', // bare end marker: header only
      ],
    })
    expect(await chunksOf(pool, '/last-chunk')).toEqual(['t1', 't2'])
    expect(await chunksOf(pool, '/bare-end')).toEqual(['t1', 't2'])
  })

  it('still reads STREAM (0x04) chunks ended by 0x0c, as srpc 0.1 servers send them', async () => {
    const pool = await rawServer({
      '/last-chunk': ['0104ID000000000002' + '7431', '010cID000000000002' + '7432'],
      '/bare-end': ['0104ID000000000002' + '7431', '0104ID000000000002' + '7432', '010cID000000000000'],
    })
    expect(await chunksOf(pool, '/last-chunk')).toEqual(['t1', 't2'])
    expect(await chunksOf(pool, '/bare-end')).toEqual(['t1', 't2'])
  })

  it('takes a plain RESPONSE (0x02) as one chunk that ends the stream', async () => {
    const pool = await rawServer({ '/reply': ['0102ID000000000004' + '6f6e6c79'] }) // "only"
    expect(await chunksOf(pool, '/reply')).toEqual(['only'])
  })

  it('inflates compressed chunks (0x26) and a compressed last chunk (0x2e)', async () => {
    const a = deflateRawSync(Buffer.from('a'.repeat(2000)))
    const b = deflateRawSync(Buffer.from('b'.repeat(2000)))
    const frame = (flags: string, value: Buffer) =>
      `01${flags}ID0000${value.length.toString(16).padStart(8, '0')}${value.toString('hex')}`
    const pool = await rawServer({ '/deflated': [frame('26', a), frame('2e', b)] }, true)
    await pool.call('/none', '', { timeout: 200 }).catch(() => {}) // lets the stub's HELLO arrive
    expect(await chunksOf(pool, '/deflated')).toEqual(['a'.repeat(2000), 'b'.repeat(2000)])
  })

  it('fails a stream, and a call, with PROTOCOL_ERROR for a data frame with none of RESPONSE, STREAM, STREAM_END, ERROR', async () => {
    const pool = await rawServer({ '/nothing': ['0100ID000000000002' + '7431'] })
    const codeOf = (promise: Promise<unknown>) =>
      promise.then(
        () => 'resolved',
        (e: unknown) => (e instanceof RpcError ? e.code : `not an RpcError: ${e}`),
      )
    expect(await codeOf(chunksOf(pool, '/nothing'))).toBe(Code.PROTOCOL_ERROR)
    expect(await codeOf(pool.call('/nothing', '', { timeout: 2000 }))).toBe(Code.PROTOCOL_ERROR)
  })
})

const MANY = 200

/** Chunk `i`: its index in two bytes, then bytes derived from it; lengths from 2 bytes to past 64 KiB. */
function chunkPayload(i: number): Buffer {
  const length = i % 25 === 7 ? 70_000 + i : 2 + ((i * 131) % 3000)
  const payload = Buffer.alloc(length)
  payload.writeUInt16BE(i, 0)
  for (let k = 2; k < length; k++) payload[k] = (i * 31 + k) & 0xff
  return payload
}

/**
 * A plain v1 server written from docs/protocol.md alone: the 16-byte header of section 2 read
 * and written with Buffer methods, the flags of section 3, the server stream of section 5.2. No
 * srpc code touches its bytes. Like a v1 server, it ignores the client's HELLO (a CONTROL frame,
 * 0x40) and answers every REQUEST with MANY chunks: 0x06 each, 0x0e for the last.
 */
class DocsServer {
  #server: Server | undefined
  #sockets = new Set<TLSSocket>()

  async start(): Promise<string> {
    const { serverOptions } = await certificates()
    this.#server = createServer(serverOptions, (socket) => {
      this.#sockets.add(socket)
      socket.on('close', () => this.#sockets.delete(socket))
      socket.on('error', () => {})
      let buffered = Buffer.alloc(0)
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk])
        while (buffered.length >= 16) {
          const flags = buffered.readUInt8(1)
          const id = buffered.readBigUInt64BE(2)
          const size = 16 + buffered.readUInt16BE(10) + buffered.readUInt32BE(12)
          if (buffered.length < size) break
          buffered = buffered.subarray(size)
          if (flags & 0x01) this.#stream(socket, id)
        }
      })
    })
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve))
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`
  }

  #stream(socket: TLSSocket, id: bigint): void {
    for (let i = 0; i < MANY; i++) {
      const value = chunkPayload(i)
      const header = Buffer.alloc(16)
      header.writeUInt8(0x01, 0) // version
      header.writeUInt8(i === MANY - 1 ? 0x0e : 0x06, 1) // RESPONSE|STREAM, and STREAM_END on the last
      header.writeBigUInt64BE(id, 2)
      header.writeUInt16BE(0, 10) // no type
      header.writeUInt32BE(value.length, 12)
      socket.write(Buffer.concat([header, value]))
    }
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()))
  }
}

describe('a v1 server written from docs/protocol.md', () => {
  it(`delivers all ${MANY} chunks of its stream to callStream, in order, byte for byte`, async () => {
    const server = new DocsServer()
    docsServers.push(server)
    const pool = await h.pool(await server.start(), { helloTimeout: 100 })
    const chunks: Buffer[] = []
    for await (const chunk of pool.callStream('/many', '', { timeout: 10_000 })) chunks.push(chunk)
    expect(chunks).toHaveLength(MANY)
    for (let i = 0; i < MANY; i++) expect(chunks[i].equals(chunkPayload(i))).toBe(true)
  })
})
