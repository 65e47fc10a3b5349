// The chat's contract, shared by the server (`implement`) and every client: the page
// (`createClient(webClient, ChatContract)`), Node members (`createClient(pool, ChatContract)`).
// Valibot for the schemas: it tree-shakes to the few checks used, which keeps the page small.
import { bytes, contract, serverStream, session, unary } from '@srpc/contract'
import * as v from 'valibot'

/** Longest chat line accepted, in characters; a longer one ends the sender's session with INVALID_ARGUMENT. */
export const MAX_TEXT_LENGTH = 2000
/** Most ticks one `ticks` call may ask for. */
export const MAX_TICKS = 100_000

/** A line a member says. */
export const ChatLine = v.object({
  text: v.pipe(v.string(), v.trim(), v.minLength(1, 'say something'), v.maxLength(MAX_TEXT_LENGTH)),
})

/** What every member receives, in the same order: the room numbers its messages. */
export const RoomMessage = v.object({ seq: v.number(), from: v.string(), text: v.string() })
export type RoomMessage = v.InferOutput<typeof RoomMessage>

const Bytes = v.instance(Uint8Array)

export const ChatContract = contract('chat', {
  /** Join the room (your name in metadata `name`): send lines, receive every member's, numbered. */
  join: session({ input: ChatLine, output: RoomMessage }),
  /** `count` numbered ticks, 20 ms apart: a demo stream for the page. */
  ticks: serverStream({
    input: v.object({ count: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_TICKS)) }),
    output: v.object({ n: v.number() }),
  }),
  /** The bytes sent, back: a reachability probe and a round-trip timer. */
  echo: unary({ input: Bytes, output: Bytes, codec: bytes }),
})
