import { afterAll } from 'vitest'

/**
 * After every test file: no socket, server or timer may be left open by the tests. Waits up to
 * 2 s for sockets that are closing, then fails the file, naming what is left.
 */
const WATCHED = new Set(['TCPSocketWrap', 'TCPServerWrap', 'TLSWrap', 'Timeout', 'PipeWrap'])

function census(): Map<string, number> {
  const counts = new Map<string, number>()
  for (const type of process.getActiveResourcesInfo()) {
    if (WATCHED.has(type)) counts.set(type, (counts.get(type) ?? 0) + 1)
  }
  return counts
}

const baseline = census()

function leaks(): string[] {
  const out: string[] = []
  for (const [type, count] of census()) {
    const extra = count - (baseline.get(type) ?? 0)
    if (extra > 0) out.push(`${extra} × ${type}`)
  }
  return out
}

afterAll(async () => {
  const deadline = Date.now() + 2000
  let left = leaks()
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setTimeout(resolve, 20).unref())
    left = leaks()
  }
  if (left.length > 0) throw new Error(`test file left open handles: ${left.join(', ')}`)
})
