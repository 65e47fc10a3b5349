import { callSender, type Extensions, payloadBytes, type StreamSender } from '@srpc/core'
import { Flags, type FrameId, type RpcError } from '@srpc/protocol'
import type { CallHost } from './call-host'
import { type ResponseMetadataOwner, responseBlock } from './response-metadata'

/**
 * A server-stream chunk is framed as v1 peers frame it: RESPONSE|STREAM (0x06), the last one
 * with STREAM_END (0x0e). To a v1 client, STREAM without RESPONSE is a session message, not a
 * chunk of its call. Session messages stay STREAM (0x04) and STREAM|STREAM_END (0x0c).
 */
const CHUNKS = {
  what: 'chunk',
  flags: Flags.RESPONSE | Flags.STREAM,
  lastFlags: Flags.RESPONSE | Flags.STREAM | Flags.STREAM_END,
  ended: 'the stream has ended',
} as const
const MESSAGES = {
  what: 'message',
  flags: Flags.STREAM,
  lastFlags: Flags.STREAM | Flags.STREAM_END,
  ended: 'the session is closed',
} as const

const EMPTY = Buffer.alloc(0)

function noop(): void {}

/** What the writer needs of its call: its state ("our half is over", core's CallState) and its failure paths. */
export interface WriterCall extends ResponseMetadataOwner {
  readonly id: FrameId
  readonly host: CallHost
  readonly ext: Extensions
  readonly localEnded: boolean
  /** Our half is over, or a reply that ends it is on its way: nothing more may be sent. */
  readonly answered: boolean
  endLocal(): boolean
  /** Why a send cannot go (see core's CallState). */
  sendRefusal(message: string): RpcError | undefined
  afterDone(what: string): Promise<never>
  wrongType(err: unknown): Promise<never>
}

/**
 * The sending half of a server stream (chunks) or a session (messages): ordered, compressed,
 * credit-aware (a StreamSender), framed with the flags of its kind. Its last frame ends our
 * half of the call.
 */
export class StreamWriter {
  #call: WriterCall
  #sender: StreamSender
  #framing: typeof CHUNKS | typeof MESSAGES

  constructor(call: WriterCall, kind: 'chunks' | 'messages') {
    this.#call = call
    this.#framing = kind === 'chunks' ? CHUNKS : MESSAGES
    this.#sender = callSender(call.host, call.id, call.ext)
  }

  /**
   * One chunk or message; `isLast` ends our half with it. A value that is not bytes is a bug in
   * the handler and fails the call; after our half is over nothing more is sent.
   */
  write(data: Uint8Array | string, isLast: boolean): Promise<void> {
    const framing = this.#framing
    let bytes: Buffer
    try {
      bytes = payloadBytes(data, framing.what)
    } catch (err) {
      return this.#call.wrongType(err)
    }
    if (this.#call.answered) return this.#call.afterDone(framing.ended)
    if (isLast) {
      let block: Uint8Array | undefined
      try {
        block = responseBlock(this.#call)
      } catch (err) {
        return this.#call.wrongType(err)
      }
      // With response metadata the last chunk goes as an ordinary one, the block on the end marker.
      if (block !== undefined) {
        this.#call.endLocal()
        if (bytes.length > 0) this.#sender.send(framing.flags, bytes).catch(noop)
        return this.#sender.send(
          framing.lastFlags | Flags.METADATA,
          Buffer.from(block.buffer, block.byteOffset, block.length),
        )
      }
      this.#call.endLocal()
    }
    // An empty last chunk is a bare end marker.
    return this.#sender.send(isLast ? framing.lastFlags : framing.flags, bytes)
  }

  /**
   * Ends our half with a bare end marker, behind whatever is still queued; the marker carries the
   * response metadata when there is some (a bad entry fails the call with INTERNAL instead).
   */
  end(): Promise<void> {
    let block: Uint8Array | undefined
    try {
      block = responseBlock(this.#call)
    } catch (err) {
      return this.#call.wrongType(err)
    }
    this.#call.endLocal()
    if (block === undefined) return this.#sender.send(this.#framing.lastFlags, EMPTY)
    return this.#sender.send(
      this.#framing.lastFlags | Flags.METADATA,
      Buffer.from(block.buffer, block.byteOffset, block.length),
    )
  }

  /** Bytes queued and not yet handed to the socket. */
  get bufferedAmount(): number {
    return this.#sender.bufferedAmount
  }

  get messagesWritten(): number {
    return this.#sender.messagesWritten
  }

  /** Frames still wait for credit or for the socket. */
  get waiting(): boolean {
    return this.#sender.waiting > 0
  }

  /** Settles once nothing waits any more. */
  settled(): Promise<void> {
    return this.#sender.settled()
  }

  /** The client granted more credit (WINDOW_UPDATE). */
  grant(bytes: number): void {
    this.#sender.grant(bytes)
  }

  /** Drops what is queued: its promises reject with `reason`. */
  fail(reason: RpcError): void {
    this.#sender.fail(reason)
  }
}
