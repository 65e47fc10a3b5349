import { deflateRawSync } from 'node:zlib'
import { type Capabilities, Code, Flags, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { type ResolvedCompressionOptions, resolveCompressionOptions } from './compression'
import { ALL_FEATURES, announce, answer, type ExtensionSettings, Extensions } from './extensions'

const MIB = 1024 * 1024

function settings(overrides: Partial<ExtensionSettings> = {}): ExtensionSettings {
  return {
    features: ALL_FEATURES,
    compression: resolveCompressionOptions(undefined),
    initialWindow: MIB,
    maxFrameSize: 16 * MIB,
    ...overrides,
  }
}

/** Compression settings with any codec names: resolveCompressionOptions only admits the ones this build has. */
function codecs(...names: string[]): ResolvedCompressionOptions {
  return { enabled: true, mode: 'always', codecs: names, threshold: 1024, level: 1 }
}

/** The whole exchange: client HELLO, server answer, and what each side then holds in force. */
function handshake(client: ExtensionSettings, server: ExtensionSettings) {
  const offer = announce(client)
  const reply = answer(server, offer)
  return {
    offer,
    reply,
    clientSide: Extensions.negotiate(client, reply),
    serverSide: Extensions.negotiate(server, offer),
  }
}

function thrown(fn: () => unknown): RpcError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(RpcError)
    return err as RpcError
  }
  throw new Error('expected an RpcError')
}

const compressible = Buffer.from('{"name":"srpc","tags":["a","b","c"]} '.repeat(100))

describe('announce', () => {
  it('offers every feature, the codecs, the receive window and the frame limit, at revision 1', () => {
    expect(announce(settings())).toEqual({
      version: 1,
      features: [
        'cancel',
        'ping',
        'goaway',
        'metadata',
        'flow',
        'compression',
        'details',
        'response-metadata',
      ],
      codecs: ['deflate'],
      initialWindow: MIB,
      maxFrameSize: 16 * MIB,
    })
  })

  it('leaves out compression and its codecs when compression is disabled', () => {
    const caps = announce(settings({ compression: resolveCompressionOptions(false) }))
    expect(caps.features).not.toContain('compression')
    expect(caps.codecs).toBeUndefined()
  })

  it('lists maxConcurrentStreams only when the side has a limit', () => {
    expect(announce(settings())).not.toHaveProperty('maxConcurrentStreams')
    expect(announce(settings({ maxConcurrentStreams: 7 })).maxConcurrentStreams).toBe(7)
  })
})

describe('answer (the server HELLO)', () => {
  it('keeps only the features both sides have, in the client order', () => {
    const offer: Capabilities = { version: 1, features: ['flow', 'future-thing', 'ping', 'cancel'] }
    const reply = answer(settings({ features: ['cancel', 'ping', 'metadata'] }), offer)
    expect(reply.features).toEqual(['ping', 'cancel'])
  })

  it('chooses the first of the client codecs that the server also has', () => {
    const offer: Capabilities = { version: 1, features: ['compression'], codecs: ['zstd', 'gzip', 'deflate'] }
    const reply = answer(settings({ compression: codecs('deflate', 'gzip') }), offer)
    expect(reply.codecs).toEqual(['gzip'])
    expect(reply.features).toEqual(['compression'])
  })

  it('drops compression when no codec is shared', () => {
    const offer: Capabilities = { version: 1, features: ['ping', 'compression'], codecs: ['zstd'] }
    const reply = answer(settings(), offer)
    expect(reply.features).toEqual(['ping'])
    expect(reply).not.toHaveProperty('codecs')
  })

  it('drops compression when the client offers no codecs at all', () => {
    const reply = answer(settings(), { version: 1, features: ['compression'] })
    expect(reply.features).toEqual([])
    expect(reply).not.toHaveProperty('codecs')
  })

  it('drops compression when the server has it disabled', () => {
    const reply = answer(settings({ compression: resolveCompressionOptions(false) }), announce(settings()))
    expect(reply.features).not.toContain('compression')
    expect(reply).not.toHaveProperty('codecs')
  })

  it("carries the server's own window, frame limit and stream limit, not the client's", () => {
    const client = settings({ initialWindow: 4096, maxFrameSize: 1000 })
    const reply = answer(settings({ initialWindow: 65536, maxConcurrentStreams: 3 }), announce(client))
    expect(reply).toMatchObject({
      version: 1,
      initialWindow: 65536,
      maxFrameSize: 16 * MIB,
      maxConcurrentStreams: 3,
    })
  })
})

describe('Extensions.negotiate', () => {
  it('puts the same features in force on both sides of a default handshake', () => {
    const { clientSide, serverSide } = handshake(settings(), settings({ maxConcurrentStreams: 100 }))
    expect([...clientSide.features].sort()).toEqual([...ALL_FEATURES].sort())
    expect([...serverSide.features].sort()).toEqual([...ALL_FEATURES].sort())
    expect(clientSide.codec).toBe('deflate')
    expect(serverSide.codec).toBe('deflate')
    expect(clientSide.flow && serverSide.flow).toBe(true)
    expect(clientSide.peerMaxConcurrentStreams).toBe(100)
    expect(serverSide.peerMaxConcurrentStreams).toBeUndefined()
  })

  it("sends within the peer's window and receives within its own", () => {
    const { clientSide, serverSide } = handshake(
      settings({ initialWindow: 1000 }),
      settings({ initialWindow: 5000 }),
    )
    expect(clientSide.sendWindow).toBe(5000)
    expect(clientSide.receiveWindow).toBe(1000)
    expect(serverSide.sendWindow).toBe(1000)
    expect(serverSide.receiveWindow).toBe(5000)
  })

  it('turns flow control off when the peer announces no initialWindow', () => {
    const ext = Extensions.negotiate(settings(), { version: 1, features: ['flow', 'ping'] })
    expect(ext.flow).toBe(false)
    expect(ext.has('ping')).toBe(true)
    expect(ext.sendWindow).toBe(0)
  })

  it('leaves compression off on both sides when the server has it disabled', () => {
    const { clientSide, serverSide, reply } = handshake(
      settings(),
      settings({ compression: resolveCompressionOptions(false) }),
    )
    expect(reply.features).not.toContain('compression')
    expect(clientSide.has('compression')).toBe(false)
    expect(clientSide.compressor).toBeUndefined()
    expect(serverSide.compressor).toBeUndefined()
    expect(clientSide.compress(compressible)).toBeUndefined()
    // The client has no codec, so a COMPRESSED frame from the server is a protocol violation.
    expect(thrown(() => clientSide.decodePayload(Flags.COMPRESSED, compressible, MIB)).code).toBe(
      Code.PROTOCOL_ERROR,
    )
  })

  it('leaves compression off on both sides when the client has it disabled', () => {
    const { clientSide, serverSide } = handshake(
      settings({ compression: resolveCompressionOptions(false) }),
      settings(),
    )
    expect(clientSide.has('compression')).toBe(false)
    expect(serverSide.has('compression')).toBe(false)
    expect(serverSide.codec).toBeUndefined()
    expect(serverSide.compress(compressible)).toBeUndefined()
  })

  it('ignores features it does not know', () => {
    const ext = Extensions.negotiate(settings(), { version: 9, features: ['teleport', 'cancel'] })
    expect([...ext.features]).toEqual(['cancel'])
  })

  it('NONE is a plain v1 peer: no feature, no flow, no codec', () => {
    for (const feature of ALL_FEATURES) expect(Extensions.NONE.has(feature)).toBe(false)
    expect(Extensions.NONE.flow).toBe(false)
    expect(Extensions.NONE.codec).toBeUndefined()
  })
})

describe('Extensions per connection', () => {
  it('connections that agree the same features share one set of them', () => {
    const first = handshake(settings(), settings())
    const second = handshake(settings(), settings())
    expect(second.serverSide.features).toBe(first.serverSide.features)
    expect(second.clientSide.features).toBe(first.clientSide.features)
    const fewer = handshake(settings({ features: ['cancel', 'ping'] }), settings())
    expect([...fewer.serverSide.features].sort()).toEqual(['cancel', 'ping'])
    expect(fewer.serverSide.features).not.toBe(first.serverSide.features)
  })
})

describe('Extensions payload coding', () => {
  const always = settings({ compression: resolveCompressionOptions(true) })
  const { clientSide } = handshake(always, settings())

  it('by default (auto) sends as it is until the governor finds compression pays', () => {
    const { clientSide: auto, serverSide } = handshake(settings(), settings())
    expect(auto.compressor?.governor?.state).toBe('off')
    expect(auto.compress(compressible)).toBeUndefined()
    // The peer's mode does not matter for what it accepts: a compressed frame still inflates.
    const deflated = deflateRawSync(compressible)
    expect(serverSide.decodePayload(Flags.COMPRESSED, deflated, MIB)).toEqual(compressible)
  })

  it('with compression true has no governor: every payload above the threshold is tried', () => {
    expect(clientSide.compressor?.governor).toBeUndefined()
  })

  it('compresses a compressible payload above the threshold, and a COMPRESSED frame inflates back', () => {
    const payload = clientSide.compress(compressible)
    expect(payload).toBeDefined()
    expect(payload!.length).toBeLessThan(compressible.length)
    expect(clientSide.decodePayload(Flags.COMPRESSED, payload!, MIB)).toEqual(compressible)
  })

  it('sends a payload below the threshold as it is', () => {
    expect(clientSide.compress(compressible.subarray(0, 1023))).toBeUndefined()
  })

  it('passes an uncompressed payload through without copying', () => {
    const value = Buffer.from('plain')
    expect(clientSide.decodePayload(Flags.STREAM, value, MIB)).toBe(value)
    expect(Extensions.NONE.decodePayload(Flags.STREAM, value, MIB)).toBe(value)
  })

  it('treats COMPRESSED on a connection without compression as a PROTOCOL_ERROR', () => {
    const deflated = deflateRawSync(compressible)
    expect(thrown(() => Extensions.NONE.decodePayload(Flags.COMPRESSED, deflated, MIB)).code).toBe(
      Code.PROTOCOL_ERROR,
    )
  })

  it('fails a payload that inflates past the limit with RESOURCE_EXHAUSTED', () => {
    const deflated = deflateRawSync(compressible)
    const err = thrown(() => clientSide.decodePayload(Flags.COMPRESSED, deflated, compressible.length - 1))
    expect(err.code).toBe(Code.RESOURCE_EXHAUSTED)
  })
})
