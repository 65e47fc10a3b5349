import { execFile, execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, type Fixture, startFixture } from './fixture'

/**
 * `srpc session` typed into a real pseudo-terminal: stdin is a TTY (so the CLI prints its hint),
 * the terminal echoes what is typed, Enter sends a line, Ctrl-D ends our half. Driven with tmux
 * when it is installed, else with Python's pty module (present on Debian without installing anything);
 * SRPC_TEST_PTY=python3 picks the second even where tmux is installed.
 */
const driver =
  process.env.SRPC_TEST_PTY === 'python3'
    ? 'python3 pty'
    : has('tmux')
      ? 'tmux'
      : has('python3')
        ? 'python3 pty'
        : undefined

function has(tool: string): boolean {
  try {
    execFileSync('which', [tool], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

let f: Fixture

beforeAll(async () => {
  f = await startFixture()
  console.log(`pseudo-terminal driver: ${driver ?? 'none found'}`)
})
afterAll(async () => {
  await f?.close()
})

function run(file: string, args: readonly string[], timeout = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`

describe('srpc session in a terminal', () => {
  it.runIf(driver === 'tmux')(
    'tmux: a typed line is sent, the reply printed, Ctrl-D closes and exits 0',
    async () => {
      // A private tmux server (its own socket): the test starts it and kills only it.
      const socket = `srpc-cli-test-${process.pid}`
      const tmux = (...args: string[]) => run('tmux', ['-L', socket, '-f', '/dev/null', ...args])
      const command = [process.execPath, BIN, 'session', f.address, '/chat', '--cert-dir', f.certDir]
        .map(quote)
        .join(' ')
      let serverPid: number | undefined
      const screen = () => tmux('capture-pane', '-p', '-t', 'cli')
      const waitFor = async (text: string) => {
        const deadline = Date.now() + 10_000
        let seen = ''
        while (Date.now() < deadline) {
          seen = await screen()
          if (seen.includes(text)) return seen
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
        throw new Error(`${JSON.stringify(text)} not on the terminal within 10 s:\n${seen}`)
      }
      try {
        await tmux(
          'new-session',
          '-d',
          '-s',
          'cli',
          '-x',
          '160',
          '-y',
          '40',
          `${command}; echo "EXIT=$?"; sleep 30`,
        )
        serverPid = Number((await tmux('display-message', '-p', '-t', 'cli', '#{pid}')).trim())
        await waitFor('session open on /chat')
        await tmux('send-keys', '-t', 'cli', '-l', 'hello from a tty')
        await tmux('send-keys', '-t', 'cli', 'Enter')
        await waitFor('echo: hello from a tty')
        await tmux('send-keys', '-t', 'cli', 'C-d')
        const final = await waitFor('EXIT=')
        const lines = final.split('\n').map((line) => line.trimEnd())
        const typed = lines.indexOf('hello from a tty')
        expect(typed).toBeGreaterThan(-1)
        expect(lines.slice(typed + 1, typed + 4)).toEqual(['echo: hello from a tty', 'bye', 'EXIT=0'])
      } finally {
        await tmux('kill-server').catch(() => {
          if (serverPid) process.kill(serverPid, 'SIGKILL')
        })
      }
    },
  )

  it.runIf(driver === 'python3 pty')(
    'python pty: a typed line is sent, the reply printed, Ctrl-D closes and exits 0',
    async () => {
      const script = `
import os, pty, select, sys, time
argv = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
seen = b''
def wait_for(text):
    global seen
    deadline = time.time() + 10
    while text not in seen:
        left = deadline - time.time()
        if left <= 0:
            os.kill(pid, 9)
            sys.exit('not seen: %r in %r' % (text, seen))
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
wait_for(b'session open on /chat')
os.write(fd, b'hello from a tty\\n')
wait_for(b'echo: hello from a tty')
os.write(fd, b'\\x04')
wait_for(b'bye')
_, status = os.waitpid(pid, 0)
try:
    while select.select([fd], [], [], 0.2)[0]:
        seen += os.read(fd, 4096)
except OSError:
    pass
sys.stdout.write(seen.decode('utf8', 'replace'))
sys.stdout.write('EXIT=%d\\n' % os.waitstatus_to_exitcode(status))
`
      const out = await run(
        'python3',
        ['-c', script, process.execPath, BIN, 'session', f.address, '/chat', '--cert-dir', f.certDir],
        20_000,
      )
      const lines = out.split(/\r?\n/)
      const typed = lines.indexOf('hello from a tty')
      expect(typed).toBeGreaterThan(-1)
      expect(lines.slice(typed + 1, typed + 3)).toEqual(['echo: hello from a tty', 'bye'])
      expect(out).toContain('EXIT=0')
    },
  )

  it.runIf(driver === undefined)('needs tmux or python3 to drive a pseudo-terminal', () => {
    throw new Error('neither tmux nor python3 is installed: .ci/run must install one of them')
  })
})

describe('srpc bench on a terminal', () => {
  it.runIf(has('python3'))(
    'draws a live progress bar (cli-progress) on stderr, then clears it for the summary',
    async () => {
      // Runs the command in a pseudo-terminal and prints everything it wrote, then its exit code.
      const script = `
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b''
while True:
    try:
        chunk = os.read(fd, 65536)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf8', 'replace'))
sys.stdout.write('EXIT=%d\\n' % os.waitstatus_to_exitcode(status))
`
      const out = await run(
        'python3',
        [
          '-c',
          script,
          process.execPath,
          BIN,
          'bench',
          f.address,
          '/echo',
          '-z',
          '1200ms',
          '-c',
          '4',
          '--cert-dir',
          f.certDir,
        ],
        20_000,
      )
      expect(out).toMatch(/EXIT=0\s*$/)
      // At least one frame of the bar with its live counters, drawn with cursor control sequences.
      expect(out).toMatch(/[█░]+ \d+% \| \d+ calls \| \d+ calls\/s \| 0 errors/)
      expect(out).toContain('\u001b[')
      expect(out).toMatch(/Summary:\r?\n/)
      expect(out).toMatch(/\[OK\]\s+\d+ calls/)
    },
  )
})
