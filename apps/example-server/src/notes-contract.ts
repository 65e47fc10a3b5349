/**
 * The typed service of the demo, shared by both ends: example-client imports this file as it is.
 * Routes: /notes/add, /notes/get, /notes/list, /notes/chat, /notes/stats.
 */
import { contract, msgpack, serverStream, session, unary } from '@srpc/contract'
import { z } from 'zod'

export const Note = z.object({
  id: z.string(),
  text: z.string(),
  tags: z.array(z.string()),
})
export type Note = z.infer<typeof Note>

export const Notes = contract('notes', {
  add: unary({
    input: z.object({ text: z.string().min(1).max(200), tags: z.array(z.string()).max(5).default([]) }),
    output: Note,
    description: 'Stores a note and returns it with its id',
  }),
  get: unary({ input: z.object({ id: z.string() }), output: Note }),
  list: serverStream({ input: z.object({ limit: z.number().int().min(1).max(100) }), output: Note }),
  chat: session({
    input: z.object({ text: z.string() }),
    output: z.object({ text: z.string(), seq: z.number().int() }),
  }),
  // One method on MessagePack: a Date survives the trip.
  stats: unary({
    input: z.object({}),
    output: z.object({ count: z.number().int(), since: z.date() }),
    codec: msgpack,
  }),
})
