import { describe, expect, it } from 'vitest'
import { finish, runCli, startCli, useFixture, waitForOutput } from './fixture'

const f = useFixture()
const { certs } = f

describe('srpc stream', () => {
  it('prints each chunk on its own line, JSON kept on one line, and exits 0 at the end', async () => {
    const run = await runCli(['stream', f.address, '/count', ...certs()])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('{"n":1}\n{"n":2}\n{"n":3}\n')
  })

  it('Ctrl-C (SIGINT to the CLI) cancels the stream on the server: the handler ctx.signal aborts', async () => {
    const child = startCli(['stream', f.address, '/forever', ...certs()])
    const done = finish(child, 15_000)
    await waitForOutput(child, 'tick\n')
    child.kill('SIGINT')
    const run = await done
    expect(run.code).toBe(130)
    expect(run.stdout).toBe('tick\n')
    expect(run.stderr).toContain('stream cancelled (Ctrl-C)')
    // The server heard the cancel (not a connection loss): the handler's signal aborted with CANCELLED.
    let timer: NodeJS.Timeout | undefined
    const reason = await Promise.race([
      f.foreverAborted,
      new Promise((resolve) => {
        timer = setTimeout(resolve, 5000, 'handler signal never aborted')
      }),
    ]).finally(() => clearTimeout(timer))
    expect(reason).toBe('CANCELLED')
  })

  it('a reader that goes away (| head) ends it quietly: exit 0, nothing on stderr', async () => {
    const child = startCli(['stream', f.address, '/many', ...certs()])
    const done = finish(child, 15_000)
    await waitForOutput(child, 'line 1\n')
    child.stdout!.destroy()
    const run = await done
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
  })

  it('refuses a request-response route, naming srpc call', async () => {
    const run = await runCli(['stream', f.address, '/math/add', ...certs()])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('use `srpc call`')
  })
})

describe('srpc session', () => {
  it('piped: sends each stdin line, prints each message, closes our half at EOF', async () => {
    const run = await runCli(['session', f.address, '/chat', ...certs()], { input: 'hello\nworld\n' })
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    expect(run.stdout).toBe('echo: hello\necho: world\nbye\n')
  })

  it('a last line without a newline is still sent; an empty input only closes', async () => {
    const run = await runCli(['session', f.address, '/chat', ...certs()], { input: 'one\ntwo' })
    expect(run.stdout).toBe('echo: one\necho: two\nbye\n')
    const empty = await runCli(['session', f.address, '/chat', ...certs()], { input: '' })
    expect(empty.code).toBe(0)
    expect(empty.stdout).toBe('bye\n')
  })

  it('with the json codec, a line that is not JSON is reported and not sent; the rest go, exit 1', async () => {
    const run = await runCli(['session', f.address, '/json-chat', ...certs()], {
      input: '{"n": 2}\nnot json\n{"n":21}\n',
    })
    expect(run.stdout).toBe('{"twice":4}\n{"twice":42}\n')
    expect(run.stderr).toBe('srpc: /json-chat takes JSON (codec json), and line 2 is not JSON: not sent\n')
    expect(run.code).toBe(1)
  })

  it('SIGINT cancels an open session and exits 130', async () => {
    const child = startCli(['session', f.address, '/chat', ...certs()])
    const done = finish(child, 15_000)
    child.stdin!.write('first\n')
    await waitForOutput(child, 'echo: first\n')
    child.kill('SIGINT')
    const run = await done
    expect(run.code).toBe(130)
    expect(run.stdout).toBe('echo: first\n')
    expect(run.stderr).toContain('session cancelled (Ctrl-C)')
  })
})
