import type { Context, Server } from '@srpc/server'

/** What every member receives, in the same order: the room numbers its messages. */
export interface RoomMessage {
  seq: number
  from: string
  text: string
}

/**
 * A member whose session holds more than this many bytes unsent is skipped for the message at
 * hand (it misses it, and learns how many it missed from the next `skipped` count it gets).
 */
export const SLOW_MEMBER_BYTES = 64 * 1024
/** Longest chat line accepted, UTF-8 bytes; longer ones end the sender's session with INVALID_ARGUMENT. */
export const MAX_TEXT_BYTES = 2000

interface Member {
  name: string
  ctx: Context
  skipped: number
}

/**
 * One chat room on sessions (`/chat/join`, the member's name in metadata `name`): every line a
 * member sends is numbered and broadcast to every member, Node or browser. The broadcast never
 * waits for a member: one whose `ctx.bufferedAmount` is past SLOW_MEMBER_BYTES is skipped, so a
 * slow page cannot stall the room.
 */
export class ChatRoom {
  #members = new Set<Member>()
  #seq = 0
  /** Messages skipped for slow members since the room opened. */
  skipped = 0

  get size(): number {
    return this.#members.size
  }

  register(server: Server, route = '/chat/join'): void {
    server.handle(route, (ctx) => this.#serve(ctx))
  }

  async #serve(ctx: Context): Promise<void> {
    const name = (ctx.metadata.name ?? '').trim().slice(0, 40) || 'anonymous'
    const member: Member = { name, ctx, skipped: 0 }
    this.#members.add(member)
    try {
      this.#broadcast('room', `${name} joined`)
      for await (const line of ctx.messages()) {
        if (line.length > MAX_TEXT_BYTES) return
        this.#broadcast(name, line.toString('utf8'))
      }
    } finally {
      this.#members.delete(member)
      this.#broadcast('room', `${name} left`)
    }
  }

  #broadcast(from: string, text: string): void {
    const message: RoomMessage = { seq: ++this.#seq, from, text }
    const bytes = Buffer.from(JSON.stringify(message))
    for (const member of this.#members) {
      if (member.ctx.bufferedAmount > SLOW_MEMBER_BYTES) {
        member.skipped++
        this.skipped++
        continue
      }
      // Not awaited: the room moves on; a send that fails (member gone, queue full) is that member's loss.
      member.ctx.sendMessage(bytes).catch(() => {})
    }
  }
}
