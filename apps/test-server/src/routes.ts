import { Code, type Context, RpcError, type Server } from '@srpc/server'

/** The server's half of the chat, in order: one reply for each client message. */
export const CHAT_REPLIES = ['Hello, World!', 'Goodbye, World!'] as const

export function registerRoutes(server: Server): void {
  server.handle('/health', () => JSON.stringify({ status: 'healthy' }))
  server.handle('/chat', chat)
}

/** A bidirectional session: answers the first message and the second, then waits for the client to close. */
async function chat(ctx: Context): Promise<void> {
  for (const reply of CHAT_REPLIES) {
    const message = await ctx.receiveMessage()
    // The client closed early: returning ends our half too.
    if (message === undefined) return
    await ctx.sendMessage(reply)
  }
  if ((await ctx.receiveMessage()) !== undefined) {
    throw new RpcError(Code.FAILED_PRECONDITION, `the chat takes ${CHAT_REPLIES.length} messages`)
  }
}
