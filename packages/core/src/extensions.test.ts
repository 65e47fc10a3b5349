import { deflateRawSync } from 'node:zlib'
import { type Capabilities, Code, ControlKind, Flags, RpcError } from '@srpc/protocol'
import { describe, expect, it } from 'vitest'
import { type ResolvedCompressionOptions, resolveCompressionOptions } from './compression'
import {
  ALL_FEATURES,
  agreementFor,
  announce,
  answer,
  type ExtensionSettings,
  Extensions,
} from './extensions'

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

describe('agreementFor (one agreement per distinct HELLO)', () => {
  /** A HELLO's control value (its kind byte, then the capabilities' JSON) and a parse that counts its calls. */
  function hello(caps: Capabilities) {
    let parsed = 0
    return {
      value: Buffer.concat([Buffer.from([ControlKind.HELLO]), Buffer.from(JSON.stringify(caps))]),
      parse: () => {
        parsed++
        return structuredClone(caps)
      },
      parsed: () => parsed,
    }
  }

  it('parses and settles a HELLO once, and gives every later connection sending the same bytes that agreement', () => {
    const mine = settings()
    const offer = hello(announce(settings()))
    const first = agreementFor(mine, offer.value, offer.parse)
    const second = agreementFor(mine, Buffer.from(offer.value), offer.parse)
    expect(second).toBe(first)
    expect(offer.parsed()).toBe(1)
    expect([...first.features].sort()).toEqual([...ALL_FEATURES].sort())
    expect(first.codec).toBe('deflate')
    // Shared by connections: nobody may change what the peer said.
    expect(Object.isFrozen(first.peer)).toBe(true)
    expect(Object.isFrozen(first.peer.features)).toBe(true)
    // Each connection still gets its own compressor.
    expect(Extensions.from(mine, first).compressor).not.toBe(Extensions.from(mine, first).compressor)
  })

  it('settles a HELLO that differs in one byte on its own, and keeps agreements apart per settings', () => {
    const mine = settings()
    const offer = hello(announce(settings()))
    const other = hello({ ...announce(settings()), initialWindow: 2 * MIB })
    const a = agreementFor(mine, offer.value, offer.parse)
    const b = agreementFor(mine, other.value, other.parse)
    expect(b).not.toBe(a)
    expect(b.peer.initialWindow).toBe(2 * MIB)
    const fewer = settings({ features: ['cancel', 'ping'] })
    const c = agreementFor(fewer, offer.value, offer.parse)
    expect(c).not.toBe(a)
    expect([...c.features]).toEqual(['cancel', 'ping'])
    expect(c.codec).toBeUndefined()
    expect(offer.parsed()).toBe(2)
  })

  it('keeps nothing for a HELLO whose parse throws: the same bytes fail again', () => {
    const mine = settings()
    const bad = Buffer.from([ControlKind.HELLO, 0x7b])
    const parse = () => {
      throw new RpcError(Code.PROTOCOL_ERROR, 'malformed HELLO')
    }
    expect(thrown(() => agreementFor(mine, bad, parse)).code).toBe(Code.PROTOCOL_ERROR)
    expect(thrown(() => agreementFor(mine, bad, parse)).code).toBe(Code.PROTOCOL_ERROR)
  })

  it('keeps at most 16 agreements per settings: past them each HELLO is settled, correctly, on its own', () => {
    const mine = settings()
    const offers = Array.from({ length: 17 }, (_, i) =>
      hello({ ...announce(settings()), initialWindow: 1000 + i }),
    )
    for (const offer of offers) agreementFor(mine, offer.value, offer.parse)
    const kept = offers[15]
    expect(agreementFor(mine, kept.value, kept.parse)).toBe(agreementFor(mine, kept.value, kept.parse))
    expect(kept.parsed()).toBe(1)
    const past = offers[16]
    const again = agreementFor(mine, past.value, past.parse)
    expect(again.peer.initialWindow).toBe(1016)
    expect(agreementFor(mine, past.value, past.parse)).not.toBe(again)
    expect(past.parsed()).toBe(3)
  })
})
