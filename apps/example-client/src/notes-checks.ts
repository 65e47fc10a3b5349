import type { Pool } from '@srpc/client'
import { Code, RpcError } from '@srpc/client'
import { createClient } from '@srpc/contract'
import { Notes } from '../../example-server/src/notes-contract'
import { type CheckResult, check, expect } from './report'

const CALL_TIMEOUT = 5000

/** The typed Notes service: every kind of call, validation with its issues, error details, metadata. */
export async function notesChecks(pool: Pool): Promise<CheckResult[]> {
  const notes = createClient(pool, Notes, { validateOutput: true })
  const results: CheckResult[] = []
  let added = ''
  results.push(
    await check('typed unary (add, get)', async () => {
      let count: string | undefined
      const note = await notes.add(
        { text: 'buy milk', tags: ['home'] },
        { timeout: CALL_TIMEOUT, onResponseMetadata: (md) => (count = md['notes-count']) },
      )
      added = note.id
      const again = await notes.get({ id: note.id }, { timeout: CALL_TIMEOUT })
      expect(again.text === 'buy milk' && again.tags[0] === 'home', `got ${JSON.stringify(again)}`)
      expect(count !== undefined, 'no notes-count response metadata')
      return `note ${note.id} stored and read back; the server holds ${count} note(s)`
    }),
  )
  results.push(
    await check('typed validation', async () => {
      const err = await notes.add({ text: '', tags: ['a', 'b', 'c', 'd', 'e', 'f'] }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(RpcError.is(err, Code.INVALID_ARGUMENT), `expected INVALID_ARGUMENT, got ${String(err)}`)
      const issues = (err.details as { issues: { path: unknown[]; message: string }[] }).issues
      expect(issues.length === 2, `expected 2 issues, got ${JSON.stringify(issues)}`)
      return `INVALID_ARGUMENT with ${issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`
    }),
  )
  results.push(
    await check('typed error details', async () => {
      const err = await notes.get({ id: 'nope' }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(RpcError.is(err, Code.NOT_FOUND), `expected NOT_FOUND, got ${String(err)}`)
      expect((err.details as { id?: string }).id === 'nope', `details were ${JSON.stringify(err.details)}`)
      return `NOT_FOUND "${err.message}" with details ${JSON.stringify(err.details)}`
    }),
  )
  results.push(
    await check('typed server stream', async () => {
      const stream = notes.list({ limit: 10 }, { timeout: CALL_TIMEOUT })
      const ids: string[] = []
      for await (const note of stream) ids.push(note.id)
      expect(ids.includes(added), `note ${added} missing from ${ids.join(',')}`)
      return `${ids.length} note(s), then notes-sent=${stream.responseMetadata?.['notes-sent']}`
    }),
  )
  results.push(
    await check('typed session', async () => {
      const chat = await notes.chat({ timeout: CALL_TIMEOUT })
      await chat.send({ text: 'hello' })
      await chat.send({ text: 'bye' })
      const replies = [await chat.receive(), await chat.receive()]
      await chat.close()
      expect(replies[1]?.seq === 2, `got ${JSON.stringify(replies)}`)
      return replies.map((r) => `"${r?.text}"`).join(', ')
    }),
  )
  results.push(
    await check('typed msgpack Date', async () => {
      const stats = await notes.stats({}, { timeout: CALL_TIMEOUT })
      expect(stats.since instanceof Date, `since is ${typeof stats.since}`)
      return `${stats.count} note(s) since ${stats.since.toISOString()}`
    }),
  )
  results.push(
    await check('wrong kind refused', async () => {
      const err = await pool.call('/notes/list', '{"limit":1}', { timeout: CALL_TIMEOUT }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(RpcError.is(err, Code.FAILED_PRECONDITION), `expected FAILED_PRECONDITION, got ${String(err)}`)
      return `pool.call on a stream route: ${err.message}`
    }),
  )
  return results
}
