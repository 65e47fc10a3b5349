import type { ServerSession } from '@srpc/contract'
import type { Context } from '@srpc/server'
import type { RoomMessage } from './chat-contract'

/**
 * A member whose session holds more than this many bytes unsent is skipped for the message at
 * hand (it misses it, and learns how many it missed from the next `skipped` count it gets).
 */
export const SLOW_MEMBER_BYTES = 64 * 1024

/** A member's side of the typed `join` session: its lines in, the room's messages out. */
export type MemberSession = ServerSession<{ text: string }, RoomMessage>

interface Member {
  name: string
  session: MemberSession
  skipped: number
}

/**
 * One chat room on the contract's `join` session (the member's name in metadata `name`): every
 * line a member sends is numbered and broadcast to every member, Node or browser. The schema
 * has already refused empty and over-long lines (the sender's session ends with
 * INVALID_ARGUMENT). The broadcast never waits for a member: one whose `bufferedAmount` is past
 * SLOW_MEMBER_BYTES is skipped, so a slow page cannot stall the room.
 */
export class ChatRoom {
  #members = new Set<Member>()
  #seq = 0
  /** Messages skipped for slow members since the room opened. */
  skipped = 0

  get size(): number {
    return this.#members.size
  }

  async serve(session: MemberSession, ctx: Context): Promise<void> {
    const name = (ctx.metadata.name ?? '').trim().slice(0, 40) || 'anonymous'
    const member: Member = { name, session, skipped: 0 }
    this.#members.add(member)
    try {
      this.#broadcast('room', `${name} joined`)
      for await (const { text } of session.messages()) this.#broadcast(name, text)
    } finally {
      this.#members.delete(member)
      this.#broadcast('room', `${name} left`)
    }
  }

  #broadcast(from: string, text: string): void {
    const message: RoomMessage = { seq: ++this.#seq, from, text }
    for (const member of this.#members) {
      if (member.session.bufferedAmount > SLOW_MEMBER_BYTES) {
        member.skipped++
        this.skipped++
        continue
      }
      // Not awaited: the room moves on; a send that fails (member gone, queue full) is that member's loss.
      member.session.send(message).catch(() => {})
    }
  }
}
