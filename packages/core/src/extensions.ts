import { type Capabilities, Code, EXTENSION_VERSION, Flags, RpcError } from '@srpc/protocol'
import { asBuffer } from './buffer'
import {
  ASYNC_DEFLATE_MIN,
  Compressor,
  decompress,
  negotiateCodec,
  type ResolvedCompressionOptions,
} from './compression'
import { CompressionGovernor, type GovernorProbe } from './compression-governor'

/** Every extension this build implements. */
export const ALL_FEATURES = [
  'cancel',
  'ping',
  'goaway',
  'metadata',
  'flow',
  'compression',
  'details',
  'response-metadata',
] as const
export type Feature = (typeof ALL_FEATURES)[number]

/** What one side is willing to do, before it knows its peer. */
export interface ExtensionSettings {
  features: readonly string[]
  compression: ResolvedCompressionOptions
  /** Our receive window per stream direction, bytes. */
  initialWindow: number
  /** How far our receive windows may grow for readers that keep up (default: no growth). */
  maxWindow?: number
  maxFrameSize: number
  maxConcurrentStreams?: number
  /** For compression 'auto': the clock and load the governor reads (tests inject one). */
  governorProbe?: () => GovernorProbe
}

/** What we announce in HELLO. */
export function announce(settings: ExtensionSettings): Capabilities {
  const compression = settings.compression.enabled && settings.features.includes('compression')
  const caps: Capabilities = {
    version: EXTENSION_VERSION,
    features: settings.features.filter((f) => f !== 'compression' || compression),
    initialWindow: settings.initialWindow,
    maxFrameSize: settings.maxFrameSize,
  }
  if (compression) caps.codecs = [...settings.compression.codecs]
  if (settings.maxConcurrentStreams !== undefined) caps.maxConcurrentStreams = settings.maxConcurrentStreams
  return caps
}

/**
 * The server's answer to a client's HELLO: the features both have, and for compression the
 * first of the client's codecs the server also has.
 */
export function answer(settings: ExtensionSettings, offer: Capabilities): Capabilities {
  const mine = announce(settings)
  // Flow control needs the client's window: without one it is off for both sides.
  const features = offer.features.filter(
    (f) => mine.features.includes(f) && (f !== 'flow' || !!offer.initialWindow),
  )
  const codec = negotiateCodec(offer.codecs, mine.codecs ?? [])
  const caps: Capabilities = {
    ...mine,
    features: codec === undefined ? features.filter((f) => f !== 'compression') : features,
  }
  if (codec === undefined) delete caps.codecs
  else caps.codecs = [codec]
  return caps
}

/**
 * The extensions in force on a connection. `NONE` is a plain v1 peer. Built from our settings
 * and the peer's HELLO (for a client: the server's answer; for a server: the client's offer).
 */
export class Extensions {
  static readonly NONE = new Extensions(new Set(), undefined, undefined, 0, 0, 0, undefined)

  readonly features: ReadonlySet<string>
  /** Compresses what we send, when both agreed on a codec and we have compression enabled. */
  readonly compressor: Compressor | undefined
  /** The codec a COMPRESSED frame from the peer uses. */
  readonly codec: string | undefined
  /** Credit we start with on each stream we send on (the peer's window). */
  readonly sendWindow: number
  /** The window we grant on each stream we receive on. */
  readonly receiveWindow: number
  readonly maxReceiveWindow: number
  readonly peerMaxConcurrentStreams: number | undefined

  constructor(
    features: ReadonlySet<string>,
    compressor: Compressor | undefined,
    codec: string | undefined,
    sendWindow: number,
    receiveWindow: number,
    maxReceiveWindow: number,
    peerMaxConcurrentStreams: number | undefined,
  ) {
    this.features = features
    this.compressor = compressor
    this.codec = codec
    this.sendWindow = sendWindow
    this.receiveWindow = receiveWindow
    this.maxReceiveWindow = maxReceiveWindow
    this.peerMaxConcurrentStreams = peerMaxConcurrentStreams
  }

  static negotiate(settings: ExtensionSettings, peer: Capabilities): Extensions {
    return Extensions.from(settings, agree(settings, peer))
  }

  /** The extensions of one connection from an agreement: its own compressor, the rest shared. */
  static from(settings: ExtensionSettings, agreement: Agreement): Extensions {
    const { peer, codec } = agreement
    const mode = settings.compression.mode
    const compressor =
      codec !== undefined && settings.compression.enabled && mode !== 'never'
        ? new Compressor(codec, settings.compression, mode === 'auto' ? governorFactory(settings) : undefined)
        : undefined
    return new Extensions(
      agreement.features,
      compressor,
      codec,
      peer.initialWindow ?? 0,
      settings.initialWindow,
      settings.maxWindow ?? settings.initialWindow,
      peer.maxConcurrentStreams,
    )
  }

  has(feature: Feature): boolean {
    return this.features.has(feature)
  }

  get flow(): boolean {
    return this.features.has('flow')
  }

  /** The payload compressed, when compression is on and pays; undefined to send it as it is. */
  compress(payload: Buffer): Buffer | undefined {
    return this.compressor?.compress(payload)
  }

  /**
   * As `compress`, but a payload of ASYNC_DEFLATE_MIN or more that is to be tried is deflated on
   * zlib's thread pool: then a promise (of the compressed payload, or undefined when it did not
   * pay; never rejected). The caller keeps messages in order while it waits.
   */
  compressMaybeAsync(payload: Buffer): Buffer | undefined | Promise<Buffer | undefined> {
    const compressor = this.compressor
    if (compressor === undefined) return undefined
    return payload.length >= ASYNC_DEFLATE_MIN
      ? compressor.compressAsync(payload)
      : compressor.compress(payload)
  }

  /**
   * The payload of a received frame, inflated if it is COMPRESSED. A COMPRESSED frame on a
   * connection without compression is a PROTOCOL_ERROR; inflating past `maxLength` is
   * RESOURCE_EXHAUSTED (for that call only).
   */
  decodePayload(flags: number, payload: Buffer, maxLength: number): Buffer {
    if (!(flags & Flags.COMPRESSED)) return payload
    if (this.codec === undefined) {
      throw new RpcError(
        Code.PROTOCOL_ERROR,
        'compressed frame on a connection that did not negotiate compression',
      )
    }
    return decompress(this.codec, payload, maxLength)
  }
}

/**
 * What our settings and one peer HELLO settle, apart from any one connection: the peer's
 * capabilities, the features both have, the codec. Every connection that receives the same HELLO
 * (every client of one version and configuration) shares it.
 */
export interface Agreement {
  /** The peer's capabilities, as parsed (frozen: shared by connections). */
  readonly peer: Capabilities
  readonly features: ReadonlySet<string>
  readonly codec: string | undefined
  /** A server's answer to this HELLO, encoded as a control frame; made by the first connection that sends it. */
  answerFrame: Uint8Array | undefined
}

/** The agreement of our settings with a peer's capabilities. */
export function agree(settings: ExtensionSettings, peer: Capabilities): Agreement {
  const features = new Set(peer.features.filter((f) => settings.features.includes(f)))
  const codec = features.has('compression')
    ? negotiateCodec(peer.codecs, settings.compression.codecs)
    : undefined
  if (codec === undefined) features.delete('compression')
  if (features.has('flow') && !peer.initialWindow) features.delete('flow')
  return { peer, features: sharedFeatures(features), codec, answerFrame: undefined }
}

/**
 * Agreements by the bytes of the HELLO they answer, per settings. Parsing a HELLO's JSON,
 * negotiating and encoding the answer took about 5 KB of short-lived objects per connection on a
 * server (the sampling heap profiler over 1,000 TLS connections), and garbage made while
 * connections open is what makes V8 grow the young generation (bench g, apps/bench/README.md).
 * Bounded: past MAX_AGREEMENTS distinct HELLOs per settings, each is settled on its own.
 */
const MAX_AGREEMENTS = 16
/** The HELLOs settled for one settings, with a copy of each one's bytes: compared, never turned into a key string. */
const agreements = new WeakMap<ExtensionSettings, { hello: Buffer; agreement: Agreement }[]>()

/**
 * The agreement for a HELLO whose control value (kind byte included) is `value`: the one made for
 * the same bytes before, or a new one from `parse()`, which checks the HELLO and may throw (then
 * nothing is kept). Matched on the bytes themselves, so a HELLO that differs in any byte is
 * parsed and checked on its own.
 */
export function agreementFor(
  settings: ExtensionSettings,
  value: Uint8Array,
  parse: () => Capabilities,
): Agreement {
  let known = agreements.get(settings)
  const hello = asBuffer(value)
  if (known !== undefined) {
    for (const entry of known) if (entry.hello.equals(hello)) return entry.agreement
  }
  const agreement = agree(settings, frozen(parse()))
  if (known === undefined) {
    known = []
    agreements.set(settings, known)
  }
  if (known.length < MAX_AGREEMENTS) known.push({ hello: Buffer.from(hello), agreement })
  return agreement
}

function frozen(caps: Capabilities): Capabilities {
  Object.freeze(caps.features)
  if (caps.codecs !== undefined) Object.freeze(caps.codecs)
  return Object.freeze(caps)
}

/**
 * Agreed feature sets, shared: nearly every connection of a process agrees the same few, and a Set
 * per connection cost 232 bytes. Bounded: past MAX_SHARED_FEATURE_SETS distinct sets (only a
 * process talking to many differently configured peers gets there) each keeps its own.
 */
const MAX_SHARED_FEATURE_SETS = 64
const featureSets = new Map<string, ReadonlySet<string>>()
function sharedFeatures(features: Set<string>): ReadonlySet<string> {
  const key = [...features].sort().join(',')
  const known = featureSets.get(key)
  if (known !== undefined) return known
  if (featureSets.size < MAX_SHARED_FEATURE_SETS) featureSets.set(key, features)
  return features
}

/** Makes the governor of a connection when its first large payload comes: one function per settings, not per connection. */
const governorFactories = new WeakMap<ExtensionSettings, () => CompressionGovernor>()
function governorFactory(settings: ExtensionSettings): () => CompressionGovernor {
  let make = governorFactories.get(settings)
  if (make === undefined) {
    make = () => new CompressionGovernor(settings.governorProbe?.())
    governorFactories.set(settings, make)
  }
  return make
}
