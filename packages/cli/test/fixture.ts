import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { msgpack } from '@srpc/contract'
import { Code, RpcError } from '@srpc/protocol'
import { Server } from '@srpc/server'
import { ensureCertificateSet, serverTlsOptions } from '@srpc/tlsutil'
import { afterAll, afterEach, beforeAll } from 'vitest'

/** MessagePack needs no schema (only protobuf does). */
const NO_SCHEMA = undefined as unknown as Parameters<typeof msgpack.encode>[1]

/** The built binary: the tests run what users run (build first). */
export const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url))

export const HEALTH_CHECK = '/srpc.health/check'
export const HEALTH_WATCH = '/srpc.health/watch'
export const REFLECTION_LIST = '/srpc.reflection/list'

export interface Fixture {
  server: Server
  address: string
  certDir: string
  /** Resolves with the code of the reason `/forever`'s ctx.signal aborted with. */
  foreverAborted: Promise<string>
  close(): Promise<void>
}

/**
 * The fixture for every test of a file: started before the first, closed after the last; the
 * CLI processes a test spawned are killed after it. Its properties read the started fixture, and
 * `certs()` gives the flags that point the CLI at its certificate set.
 */
export function useFixture(): Fixture & { certs(): string[] } {
  let started: Fixture | undefined
  beforeAll(async () => {
    started = await startFixture()
  })
  afterEach(killAll)
  afterAll(async () => {
    await started?.close()
  })
  const get = (): Fixture => {
    if (started === undefined) throw new Error('the fixture is used before beforeAll started it')
    return started
  }
  return {
    get server() {
      return get().server
    },
    get address() {
      return get().address
    },
    get certDir() {
      return get().certDir
    },
    get foreverAborted() {
      return get().foreverAborted
    },
    close: () => get().close(),
    certs: () => ['--cert-dir', get().certDir],
  }
}

/**
 * A real server over mutual TLS on 127.0.0.1 port 0, with a certificate set from @srpc/tlsutil
 * in a temp folder, and routes for every command. Health and reflection are the server's own
 * services (`server.health`, `/srpc.reflection/list`).
 */
export async function startFixture(): Promise<Fixture> {
  const certDir = await mkdtemp(join(tmpdir(), 'srpc-cli-'))
  const certs = await ensureCertificateSet(join(certDir, 'set'), { hosts: ['127.0.0.1', 'localhost'] })
  const server = new Server({
    address: '127.0.0.1:0',
    tls: serverTlsOptions(certs.server, { requestClientCert: true }),
  })
  server.on('error', () => {})
  let onForeverAbort!: (code: string) => void
  const foreverAborted = new Promise<string>((resolve) => {
    onForeverAbort = resolve
  })
  registerRoutes(server, onForeverAbort)
  const { port } = await server.listen()
  return {
    server,
    address: `127.0.0.1:${port}`,
    certDir: join(certDir, 'set'),
    foreverAborted,
    async close() {
      await server.shutdown({ timeout: 1000 })
      await rm(certDir, { recursive: true, force: true })
    },
  }
}

function registerRoutes(server: Server, onForeverAbort: (code: string) => void): void {
  server.handle('/echo', (ctx) => ctx.payload)
  server.handle('/metadata', (ctx) => JSON.stringify(ctx.metadata))
  server.handle('/binary', () => Buffer.from([0x00, 0xff, 0x10, 0x80, 0x0a]))
  server.handle('/deny', () => {
    throw new RpcError(Code.PERMISSION_DENIED, 'not for you')
  })
  server.handle('/slow', async (ctx) => {
    await sleepUnlessAborted(5000, ctx.signal)
    return 'late'
  })
  let flaky = 0
  server.handle('/flaky', (ctx) => {
    flaky++
    if (flaky % 4 === 0) throw new RpcError(Code.RESOURCE_EXHAUSTED, 'every fourth call fails')
    return ctx.payload
  })
  server.handle(
    '/math/add',
    (ctx) => {
      // Asserts the CLI re-encoded the JSON compactly (codec json): the bytes, not just the value.
      const text = ctx.payload.toString('utf8')
      if (text !== JSON.stringify(JSON.parse(text)))
        throw new RpcError(Code.INVALID_ARGUMENT, `not compact: ${text}`)
      const { a, b } = JSON.parse(text) as { a: number; b: number }
      return JSON.stringify({ sum: a + b })
    },
    {
      kind: 'unary',
      codec: 'json',
      input: {
        type: 'object',
        properties: { a: { type: 'number' }, b: { type: 'number' } },
        required: ['a', 'b'],
      },
      output: { type: 'object', properties: { sum: { type: 'number' } }, required: ['sum'] },
      description: 'Adds two numbers',
    },
  )
  server.handle(
    '/count',
    async (ctx) => {
      const stream = ctx.stream()
      for (let n = 1; n <= 3; n++) await stream.writeChunk(JSON.stringify({ n }), n === 3)
    },
    { kind: 'server-stream', codec: 'json', description: 'Three numbered chunks' },
  )
  server.handle(
    '/packed',
    // A MessagePack route as @srpc/contract's codec writes one: the request decoded, an answer encoded.
    (ctx) => {
      const got = msgpack.decode(ctx.payload, NO_SCHEMA)
      return Buffer.from(msgpack.encode({ got, at: new Date(0) }, NO_SCHEMA))
    },
    { kind: 'unary', codec: 'msgpack', description: 'A msgpack route' },
  )
  server.handle('/proto', (ctx) => ctx.payload, {
    kind: 'unary',
    codec: 'protobuf',
    description: 'A protobuf route: the CLI cannot encode it',
  })
  server.handle(
    '/json-chat',
    async (ctx) => {
      for await (const message of ctx.messages()) {
        const { n } = JSON.parse(message.toString('utf8')) as { n: number }
        await ctx.sendMessage(JSON.stringify({ twice: n * 2 }))
      }
    },
    { kind: 'session', codec: 'json' },
  )
  server.handle('/many', async (ctx) => {
    const stream = ctx.stream()
    for (let i = 1; i <= 2000 && !ctx.signal.aborted; i++) await stream.writeChunk(`line ${i}`, i === 2000)
  })
  server.handle('/forever', async (ctx) => {
    const stream = ctx.stream()
    ctx.signal.addEventListener('abort', () => onForeverAbort(RpcError.from(ctx.signal.reason).code), {
      once: true,
    })
    await stream.writeChunk('tick', false)
    // Ends only when the client cancels (or after 15 s, so a broken test cannot hang the server).
    await sleepUnlessAborted(15_000, ctx.signal)
  })
  server.handle(
    '/chat',
    async (ctx) => {
      for await (const message of ctx.messages()) await ctx.sendMessage(`echo: ${message.toString('utf8')}`)
      await ctx.sendMessage('bye')
    },
    { kind: 'session', description: 'Echoes each message, says bye at the end' },
  )
}

function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}

// --- running the binary ---------------------------------------------------------------------

export interface Run {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  stdoutBytes: Buffer
}

const children = new Set<ChildProcess>()

/** A clean environment: nothing from the developer's shell (SRPC_*, NO_COLOR) leaks into a test. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...extra }
}

/** Starts the binary; the caller reads its output as it comes. Killed by PID in `killAll()`. */
export function startCli(args: readonly string[], env: NodeJS.ProcessEnv = cliEnv()): ChildProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

/** Runs the binary to its end (at most `timeout` ms, then it is killed and the test fails). */
export async function runCli(
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeout?: number } = {},
): Promise<Run> {
  const child = startCli(args, options.env ?? cliEnv())
  if (options.input !== undefined) child.stdin!.end(options.input)
  else child.stdin!.end()
  return finish(child, options.timeout ?? 15_000)
}

/** Collects a started child's output until it exits, killing it after `timeout` ms. */
export function finish(child: ChildProcess, timeout: number): Promise<Run> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout!.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr!.on('data', (chunk: Buffer) => err.push(chunk))
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`srpc ${child.spawnargs.slice(2).join(' ')} still running after ${timeout} ms`))
    }, timeout)
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      const stdoutBytes = Buffer.concat(out)
      resolve({
        code,
        signal,
        stdout: stdoutBytes.toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        stdoutBytes,
      })
    })
  })
}

/** Waits until `child` has printed `text` on stdout (at most `timeout` ms). */
export function waitForOutput(child: ChildProcess, text: string, timeout = 10_000): Promise<string> {
  let seen = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.stdout!.off('data', onData)
      reject(
        new Error(`no ${JSON.stringify(text)} on stdout within ${timeout} ms; got ${JSON.stringify(seen)}`),
      )
    }, timeout)
    const onData = (chunk: Buffer) => {
      seen += chunk.toString('utf8')
      if (seen.includes(text)) {
        clearTimeout(timer)
        child.stdout!.off('data', onData)
        resolve(seen)
      }
    }
    child.stdout!.on('data', onData)
  })
}

/** Kills every child a test started and did not see exit (by PID, never by name). */
export function killAll(): void {
  for (const child of children) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  children.clear()
}
