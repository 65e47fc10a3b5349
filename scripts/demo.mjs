#!/usr/bin/env node
// Runs srpc end to end: each server app on a free port, then its client against it (and, against
// the example server, one `srpc call` and one `srpc stream` from packages/cli).
// Run after the build (`pnpm demo` does both). Exits 0 only if both clients passed every check
// and both servers stopped cleanly. Every wait is bounded; only processes started here are signalled.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const HOST = '127.0.0.1'
/** How long a server may take to print its "listening" line (the first run also creates certificates). */
const READY_TIMEOUT = 15_000
/** How long a client may run before it counts as hung. */
const CLIENT_TIMEOUT = 120_000
/** How long a server gets to shut down after SIGTERM before SIGKILL. */
const STOP_TIMEOUT = 5_000
/** How long one `srpc` command of the demo may run. */
const CLI_TIMEOUT = 30_000
const PAIRS = [
  // `cli`: after the client, `srpc call` and `srpc stream` run against the same server (packages/cli).
  { server: 'example-server', client: 'example-client', cli: true },
  { server: 'test-server', client: 'test-client' },
]
const CLI_BIN = join(ROOT, 'packages', 'cli', 'dist', 'bin.js')
/** Programs that run on their own (server and client in one process) and must exit 0. */
const SOLO = ['example-otel']

/** Children still running, so an interrupt or a crash can stop exactly these. */
const running = new Map()
/** Child → the promise of its stop, so each is signalled once. */
const stopped = new Map()
/** Set by SIGINT/SIGTERM: nothing new is started after it. */
let interrupted = false

function appEntry(app) {
  return join(ROOT, 'apps', app, 'dist', 'main.js')
}

/** A port the OS says is free right now (another process could still take it before the server does). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, HOST, () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

function start(app, env, stdio, args = [appEntry(app)]) {
  if (interrupted) throw new Error('interrupted')
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio })
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      running.delete(child)
      resolve({ code, signal })
    })
    // A failed spawn emits 'error' and may never emit 'exit'.
    child.once('error', (err) => {
      running.delete(child)
      resolve({ code: null, signal: null, reason: `could not start: ${err.message}` })
    })
  })
  running.set(child, exited)
  return { child, exited }
}

/** Resolves with the exit outcome, or undefined when `ms` passed first. */
function within(promise, ms) {
  let timer
  const deadline = new Promise((resolve) => {
    timer = setTimeout(resolve, ms, undefined)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

function describeExit({ code, signal, reason }) {
  if (reason) return reason
  return signal ? `killed by ${signal}` : `exit code ${code}`
}

/** Starts a server app and waits for its "listening on" line; its output is shown with a prefix. */
async function startServer(app, env) {
  const server = start(app, env, ['ignore', 'pipe', 'pipe'])
  const prefix = `  [${app}] `
  let onReady
  const ready = new Promise((resolve) => {
    onReady = resolve
  })
  createInterface({ input: server.child.stdout }).on('line', (line) => {
    console.log(prefix + line)
    if (line.startsWith('listening on ')) onReady(line)
  })
  createInterface({ input: server.child.stderr }).on('line', (line) => console.error(prefix + line))
  const outcome = await within(
    Promise.race([ready.then(() => 'ready'), server.exited.then((exit) => exit)]),
    READY_TIMEOUT,
  )
  if (outcome === 'ready') return server
  if (outcome === undefined) {
    await stop(server)
    throw new Error(`${app} did not print "listening on" within ${READY_TIMEOUT} ms`)
  }
  throw new Error(`${app} exited before listening (${describeExit(outcome)})`)
}

/** SIGTERM, then SIGKILL if the process is still there after STOP_TIMEOUT. Returns how it ended. */
function stop(proc) {
  // An interrupt and the normal path may both stop a server: it gets one SIGTERM, both get the outcome.
  let stopping = stopped.get(proc.child)
  if (!stopping) {
    stopping = terminate(proc)
    stopped.set(proc.child, stopping)
  }
  return stopping
}

async function terminate({ child, exited }) {
  if (running.has(child)) child.kill('SIGTERM')
  const outcome = await within(exited, STOP_TIMEOUT)
  if (outcome !== undefined) return outcome
  child.kill('SIGKILL')
  // SIGKILL cannot be caught; the bound only guards against a process stuck in the kernel.
  return (
    (await within(exited, STOP_TIMEOUT)) ?? { code: null, signal: null, reason: 'no exit seen after SIGKILL' }
  )
}

async function runClient(app, env) {
  const client = start(app, env, 'inherit')
  const outcome = await within(client.exited, CLIENT_TIMEOUT)
  if (outcome !== undefined) return outcome
  console.error(`  ${app} still running after ${CLIENT_TIMEOUT} ms: stopping it`)
  await stop(client)
  return { code: null, signal: null, reason: `stopped after running for ${CLIENT_TIMEOUT} ms` }
}

/** Runs the built `srpc` binary to its end (bounded), collecting what it printed. */
async function runSrpc(args, env) {
  const proc = start(null, env, ['ignore', 'pipe', 'pipe'], [CLI_BIN, ...args])
  let stdout = ''
  let stderr = ''
  proc.child.stdout.on('data', (chunk) => {
    stdout += chunk
  })
  proc.child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  const outcome = (await within(proc.exited, CLI_TIMEOUT)) ?? (await stop(proc))
  return { ...outcome, stdout, stderr }
}

/**
 * The demo's use of the CLI: one `srpc call` and one `srpc stream` against the example server,
 * each checked byte for byte (exit code and stdout). Returns one result line per check.
 */
async function runCliChecks(env) {
  const certDir = env.SRPC_CERT_DIR || join(ROOT, '.srpc-certs')
  const common = ['--cert-dir', certDir, '--output', 'json']
  const checks = []
  const request = '{"demo":"srpc call"}'
  const call = await runSrpc(['call', env.SRPC_ADDRESS, '/echo', '-d', request, ...common], env)
  checks.push({
    name: `srpc call ${env.SRPC_ADDRESS} /echo -d '${request}'`,
    ok: call.code === 0 && call.stdout === `${request}\n`,
    got: call,
  })
  const stream = await runSrpc(['stream', env.SRPC_ADDRESS, '/stream/time', ...common], env)
  const ticks = stream.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      try {
        return JSON.parse(line).tick
      } catch {
        return undefined
      }
    })
  checks.push({
    name: `srpc stream ${env.SRPC_ADDRESS} /stream/time (10 ticks, one JSON line each)`,
    ok: stream.code === 0 && ticks.join(',') === '1,2,3,4,5,6,7,8,9,10',
    got: stream,
  })
  for (const check of checks) {
    console.log(`  ${check.ok ? '✓' : '✗'} ${check.name}`)
    if (!check.ok) {
      console.log(
        `    ${describeExit(check.got)}; stdout ${JSON.stringify(check.got.stdout)}; stderr ${JSON.stringify(check.got.stderr)}`,
      )
    }
  }
  return checks
}

/** One server + client run. Returns both outcomes; throws only when the server never became ready. */
async function runPair({ server: serverApp, client: clientApp, cli }) {
  const port = await freePort()
  const env = {
    ...process.env,
    SRPC_ADDRESS: `${HOST}:${port}`,
    // Short ticks keep the 10-tick time stream to about two seconds.
    SRPC_TICK_MS: process.env.SRPC_TICK_MS || '200',
  }
  console.log(`\n── ${serverApp} + ${clientApp} on ${env.SRPC_ADDRESS}`)
  const server = await startServer(serverApp, env)
  let client
  let cliChecks = []
  let serverExit
  try {
    client = await runClient(clientApp, env)
    if (cli) {
      console.log('\n── srpc (packages/cli) against the same server')
      cliChecks = await runCliChecks(env)
    }
  } finally {
    serverExit = await stop(server)
  }
  return { client, server: serverExit, cliChecks }
}

async function main() {
  const apps = [...PAIRS.flatMap((p) => [p.server, p.client]), ...SOLO]
  const missing = [...apps.map(appEntry), CLI_BIN].filter((file) => !existsSync(file))
  if (missing.length > 0) {
    console.error(`demo: not built: ${missing.join(', ')}`)
    console.error(
      'demo: build first, or run `npx -y pnpm@10.34.9 demo`, which builds and then runs this script',
    )
    return 1
  }
  const lines = []
  let ok = true
  for (const pair of PAIRS) {
    try {
      const { client, server, cliChecks } = await runPair(pair)
      const passed = client.code === 0 && server.code === 0
      ok &&= passed
      lines.push(
        `${passed ? '✓' : '✗'} ${pair.client}: ${describeExit(client)}; ${pair.server}: ${describeExit(server)} after SIGTERM`,
      )
      for (const check of cliChecks) {
        ok &&= check.ok
        lines.push(`${check.ok ? '✓' : '✗'} ${check.name}: ${describeExit(check.got)}`)
      }
    } catch (err) {
      ok = false
      console.error(`  ${err.message}`)
      lines.push(`✗ ${pair.client}: not run, ${err.message}`)
    }
  }
  for (const app of SOLO) {
    console.log(`\n── ${app}`)
    const outcome = await runClient(app, process.env)
    ok &&= outcome.code === 0
    lines.push(`${outcome.code === 0 ? '✓' : '✗'} ${app}: ${describeExit(outcome)}`)
  }
  console.log('\n── summary')
  for (const line of lines) console.log(line)
  console.log(ok ? 'demo passed' : 'demo FAILED')
  return ok ? 0 : 1
}

function stopAll() {
  return Promise.all([...running].map(([child, exited]) => stop({ child, exited })))
}

for (const [signal, number] of [
  ['SIGINT', 2],
  ['SIGTERM', 15],
]) {
  process.once(signal, () => {
    interrupted = true
    console.error(`\ndemo: ${signal}, stopping the processes it started`)
    stopAll().finally(() => process.exit(128 + number))
  })
}

main().then(
  (code) => {
    process.exitCode = code
  },
  async (err) => {
    console.error(`demo: ${err.stack ?? err}`)
    await stopAll()
    process.exitCode = 1
  },
)
