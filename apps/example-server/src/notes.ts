import { implement } from '@srpc/contract'
import { Code, RpcError, type Server } from '@srpc/server'
import { type Note, Notes } from './notes-contract'

/** Serves the Notes contract from memory (bounded: the oldest note goes past MAX_NOTES). */
export function registerNotes(server: Server): void {
  const MAX_NOTES = 1000
  const notes = new Map<string, Note>()
  const since = new Date()
  let next = 1
  implement(server, Notes, {
    add: ({ text, tags }, ctx) => {
      const note = { id: String(next++), text, tags }
      notes.set(note.id, note)
      if (notes.size > MAX_NOTES) notes.delete(notes.keys().next().value!)
      ctx.responseMetadata['notes-count'] = String(notes.size)
      return note
    },
    get: ({ id }) => {
      const note = notes.get(id)
      if (!note) throw new RpcError(Code.NOT_FOUND, `no note ${id}`, { details: { id } })
      return note
    },
    list: async function* ({ limit }, ctx) {
      let sent = 0
      for (const note of notes.values()) {
        if (sent++ === limit) break
        yield note
      }
      ctx.responseMetadata['notes-sent'] = String(Math.min(sent, limit))
    },
    chat: async (session) => {
      let seq = 0
      for await (const { text } of session.messages())
        await session.send({ text: `you said: ${text}`, seq: ++seq })
    },
    stats: () => ({ count: notes.size, since }),
  })
}
