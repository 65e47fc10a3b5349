#!/usr/bin/env node
/**
 * pack-check: proves that the packages under packages/ install and work outside this workspace,
 * the way a user gets them from the registry. CI runs it after the tests (.ci/run), on the builds
 * they made. By hand: `npx -y pnpm@10.34.9 pack-check` (builds the packages first; add `--keep` to
 * keep the temp folders and look inside them). It takes about a minute, most of it tsc and attw.
 *
 * Steps, one line of output each (✓ passed, ✗ failed, - skipped because an earlier step failed):
 *   pack        `pnpm -r pack` every package into a temp folder (npm pack would keep `workspace:^`,
 *               which npm cannot install; pnpm rewrites it), then reads each tarball: no
 *               `workspace:` range left, internal dependencies at `^<version>` of the package in
 *               this tree, LICENSE, README.md and every file the exports map and `bin` name present, no
 *               sources or tests shipped.
 *   install     a fresh project in os.tmpdir() (outside the workspace, so nothing resolves to it)
 *               `npm install`s the tarballs with plain npm, plus typescript and @types/node. Every
 *               @srpc package must resolve to its tarball, once (no nested copy from the registry).
 *   smoke esm   an .mjs that `import`s the packages, and an .cjs that `require`s them: certificates
 *   smoke cjs   from @srpc/tlsutil, a Server on 127.0.0.1 port 0, a Pool over verified TLS; a
 *               unary call (binary and a compressible 100 KiB payload), a server stream, a session,
 *               an unknown route (RpcError NOT_FOUND), a frame through @srpc/protocol's codec,
 *               compared byte for byte, a task on a @srpc/threads worker thread (its module
 *               written to os.tmpdir()), and the installed `srpc` binary (node_modules/.bin, from
 *               @srpc/cli) calling the same server and exiting by its exit-code table. Then it
 *               shuts down and must exit on its own: a handle left
 *               open trips its 20 s watchdog.
 *   types …     a .ts consumer that imports every package and uses the main APIs, under
 *               `tsc --strict --noEmit` with module/moduleResolution NodeNext, Node16 (both as an
 *               .mts and a .cts file, so the import and the require conditions are checked) and
 *               bundler (module ESNext). Under NodeNext skipLibCheck is off, so the shipped .d.ts
 *               and .d.cts are checked too.
 *   types browser  a browser app's project: @srpc/protocol, @srpc/core (for its portable entry),
 *               @srpc/web and @srpc/contract only (no @srpc/client or @srpc/server, no
 *               @types/node), a typed client over a WebClient
 *               under tsc --strict with lib DOM and skipLibCheck off.
 *   publint     publint --strict on every tarball (warnings fail too).
 *   attw        @arethetypeswrong/cli on every tarball, all four resolution modes (node10,
 *               node16 from CJS, node16 from ESM, bundler) and no rule ignored: every package
 *               ships separate .d.ts (ESM) and .d.cts (CJS) types, so none of them has a reason to
 *               fail any mode. Add `--ignore-rules` here only with a comment saying why.
 *
 * For contributors:
 *   - `node scripts/pack-check.mjs` packs the dist/ that is there: build first (the root script does).
 *   - A new package under packages/ is picked up by itself (private ones are skipped); add its
 *     main API to the smoke and type-check sources below.
 *   - Needs the npm registry (third-party dependencies, typescript, @types/node). Only Node's own
 *     APIs are used here (no shell commands), so it runs wherever Node 20 and npm do.
 *   - Exits 0 when every step passed, 1 otherwise; temp folders are removed either way.
 */
import { spawn } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'

const PNPM = 'pnpm@10.34.9'
const TYPESCRIPT = 'typescript@5.9.3'
const TYPES_NODE = '@types/node@20'
const WIN = process.platform === 'win32'
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const keep = process.argv.includes('--keep')

const children = new Set()
function kill(child) {
  try {
    if (WIN) child.kill('SIGKILL')
    else process.kill(-child.pid, 'SIGKILL')
  } catch {}
}

/** Runs a command without a shell; resolves with its exit code and output, killing it at `timeout` ms. */
function run(command, args, { cwd = root, timeout = 60_000, env = process.env } = {}) {
  return new Promise((done) => {
    // Detached (POSIX): the child leads its own process group, so a timeout kills npx and what it started.
    const child = spawn(command, args, {
      cwd,
      env,
      shell: WIN,
      detached: !WIN,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (d) => {
      output += d
    })
    child.stderr.on('data', (d) => {
      output += d
    })
    children.add(child)
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      kill(child)
    }, timeout)
    child.on('error', (err) => {
      clearTimeout(timer)
      children.delete(child)
      done({ code: -1, output: `${output}${err.message}\n` })
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      children.delete(child)
      if (timedOut) output += `\n(killed after ${timeout / 1000} s)\n`
      done({ code: timedOut ? -1 : code, output })
    })
  })
}

/** Runs a command and throws with its output when it fails. */
async function mustRun(what, command, args, options) {
  const result = await run(command, args, options)
  if (result.code !== 0) throw new StepError(`${what} exited with ${result.code}`, result.output)
  return result.output
}

class StepError extends Error {
  constructor(message, detail = '') {
    super(message)
    this.detail = detail
  }
}

/** The files of a .tgz as a Map of path (without the leading `package/`) to contents. */
function readTarball(bytes) {
  const tar = gunzipSync(bytes)
  const files = new Map()
  let longName
  for (let offset = 0; offset + 512 <= tar.length; ) {
    const header = tar.subarray(offset, offset + 512)
    if (header.every((b) => b === 0)) break
    const field = (start, length) => header.toString('utf8', start, start + length).replace(/\0.*$/s, '')
    const size = Number.parseInt(field(124, 12).trim() || '0', 8)
    const type = field(156, 1)
    const prefix = field(345, 155)
    const body = tar.subarray(offset + 512, offset + 512 + size)
    offset += 512 + Math.ceil(size / 512) * 512
    if (type === 'L') {
      longName = body.toString('utf8').replace(/\0.*$/s, '')
      continue
    }
    const name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100))
    longName = undefined
    if (type === '0' || type === '' || type === '\0') files.set(name.replace(/^[^/]+\//, ''), body)
  }
  return files
}

/** Every path (`./dist/index.js`) a package.json's entry fields and exports map name. */
function entryPaths(manifest) {
  const paths = new Set()
  const walk = (value) => {
    if (typeof value === 'string') {
      if (value.startsWith('./')) paths.add(value.slice(2))
    } else if (value && typeof value === 'object') for (const v of Object.values(value)) walk(v)
  }
  for (const field of ['main', 'module', 'types'])
    if (manifest[field]) walk(`./${manifest[field].replace(/^\.\//, '')}`)
  walk(manifest.exports)
  // A CLI package's binaries must ship too (@srpc/cli's `srpc`).
  walk(typeof manifest.bin === 'string' ? `./${manifest.bin.replace(/^\.\//, '')}` : manifest.bin)
  return [...paths]
}

const DEPENDENCY_FIELDS = ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies']

async function workspacePackages() {
  const dir = join(root, 'packages')
  const packages = []
  for (const name of (await readdir(dir)).sort()) {
    const file = join(dir, name, 'package.json')
    if (!existsSync(file)) continue
    const manifest = JSON.parse(await readFile(file, 'utf8'))
    if (manifest.private) continue
    packages.push({ dir: join(dir, name), manifest, name: manifest.name, version: manifest.version })
  }
  return packages
}

// --- the steps --------------------------------------------------------------------------------

async function pack(packages, packDir) {
  for (const pkg of packages) {
    for (const file of entryPaths(pkg.manifest)) {
      if (!existsSync(join(pkg.dir, file))) {
        throw new StepError(`${pkg.name}: ${file} is missing; build first (npx -y ${PNPM} build)`)
      }
    }
  }
  const versions = new Map(packages.map((p) => [p.name, p.version]))
  const problems = []
  // One pnpm run packs them all (`pnpm pack` in each package, recursively): npx and pnpm start once.
  const filters = packages.flatMap((p) => ['--filter', p.name])
  await mustRun('pnpm pack', 'npx', ['-y', PNPM, '-r', ...filters, 'pack', '--pack-destination', packDir])
  for (const pkg of packages) {
    pkg.tarball = join(packDir, `${pkg.name.replace(/^@/, '').replace('/', '-')}-${pkg.version}.tgz`)
    const files = readTarball(await readFile(pkg.tarball))
    const manifest = JSON.parse(files.get('package.json').toString('utf8'))
    for (const field of DEPENDENCY_FIELDS) {
      for (const [dep, range] of Object.entries(manifest[field] ?? {})) {
        if (range.startsWith('workspace:')) problems.push(`${pkg.name}: ${field}.${dep} is still ${range}`)
        else if (field !== 'devDependencies' && versions.has(dep) && range !== `^${versions.get(dep)}`) {
          problems.push(`${pkg.name}: ${field}.${dep} is ${range}, expected ^${versions.get(dep)}`)
        }
      }
    }
    for (const file of ['package.json', 'README.md', 'LICENSE', ...entryPaths(manifest)]) {
      if (!files.has(file)) problems.push(`${pkg.name}: ${file} is not in the tarball`)
    }
    if (!files.get('LICENSE')?.toString('utf8').startsWith('MIT License')) {
      problems.push(`${pkg.name}: LICENSE is not the MIT license`)
    }
    for (const file of files.keys()) {
      if (/(^|\/)(src|test)\/|\.test\.|\.bench\./.test(file)) problems.push(`${pkg.name}: ships ${file}`)
    }
  }
  if (problems.length > 0)
    throw new StepError(`${problems.length} problem(s) in the tarballs`, problems.join('\n'))
  const internal = packages
    .flatMap((p) => Object.entries(p.manifest.dependencies ?? {}).filter(([d]) => versions.has(d)))
    .map(([d]) => `${d} ^${versions.get(d)}`)
  return `${packages.length} tarballs; workspace ranges rewritten (${[...new Set(internal)].join(', ') || 'none'})`
}

async function install(packages, projectDir) {
  await writeFile(
    join(projectDir, 'package.json'),
    `${JSON.stringify({ name: 'srpc-pack-check', version: '0.0.0', private: true }, null, 2)}\n`,
  )
  await mustRun(
    'npm install',
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--loglevel=error',
      ...packages.map((p) => p.tarball),
      TYPESCRIPT,
      TYPES_NODE,
    ],
    { cwd: projectDir, timeout: 120_000 },
  )
  const problems = []
  for (const pkg of packages) {
    const installed = join(projectDir, 'node_modules', pkg.name)
    const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8'))
    if (manifest.version !== pkg.version)
      problems.push(`${pkg.name} ${manifest.version} installed, packed ${pkg.version}`)
  }
  // A nested @srpc copy would mean npm fetched one from the registry instead of using the tarball.
  for (const pkg of packages) {
    const nested = join(projectDir, 'node_modules', pkg.name, 'node_modules', '@srpc')
    if (existsSync(nested))
      problems.push(`${pkg.name} has its own copy of ${(await readdir(nested)).join(', ')}`)
  }
  // The browser package as installed: nothing in its build may reach for Node (a bundler targeting
  // the browser would fail on it). Its bundle and size are checked in packages/web's own tests.
  for (const file of ['index.js', 'index.cjs']) {
    const web = join(projectDir, 'node_modules', '@srpc', 'web', 'dist', file)
    if (existsSync(web) && /["']node:|\bBuffer\b/.test(await readFile(web, 'utf8')))
      problems.push(`@srpc/web dist/${file} uses a node: import or Buffer`)
  }
  if (problems.length > 0)
    throw new StepError('the installed packages are not the packed ones', problems.join('\n'))
  return `${packages.map((p) => p.name).join(', ')} from tarballs, with ${TYPESCRIPT} and ${TYPES_NODE}`
}

async function smoke(projectDir, kind) {
  const file = join(projectDir, kind === 'esm' ? 'smoke.mjs' : 'smoke.cjs')
  await writeFile(file, smokeSource(kind))
  const output = await mustRun(`node ${file}`, process.execPath, [file], { cwd: projectDir, timeout: 30_000 })
  return output.trim().split('\n').at(-1)
}

async function typecheck(projectDir, mode) {
  const config = {
    nodenext: { module: 'NodeNext', moduleResolution: 'NodeNext', files: ['consumer.mts', 'consumer.cts'] },
    node16: { module: 'Node16', moduleResolution: 'Node16', files: ['consumer.mts', 'consumer.cts'] },
    bundler: { module: 'ESNext', moduleResolution: 'bundler', files: ['consumer.ts'] },
  }[mode]
  // The shipped .d.ts and .d.cts are checked once, under NodeNext (it loads both). Checking every
  // .d.ts also means all of @types/node (about 8 s of CPU), so the other two modes skip it.
  const skipLibCheck = mode !== 'nodenext'
  for (const file of config.files) await writeFile(join(projectDir, file), CONSUMER_SOURCE)
  const tsconfig = `tsconfig.${mode}.json`
  await writeFile(
    join(projectDir, tsconfig),
    `${JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          module: config.module,
          moduleResolution: config.moduleResolution,
          types: ['node'],
          skipLibCheck,
        },
        files: config.files,
      },
      null,
      2,
    )}\n`,
  )
  const tsc = join(projectDir, 'node_modules', 'typescript', 'bin', 'tsc')
  await mustRun(`tsc -p ${tsconfig}`, process.execPath, [tsc, '-p', tsconfig, '--strict', '--noEmit'], {
    cwd: projectDir,
  })
  const libs = skipLibCheck ? 'skipLibCheck' : 'shipped .d.ts checked too'
  return `module ${config.module}, moduleResolution ${config.moduleResolution}: ${config.files.join(' + ')} clean (${libs})`
}

/**
 * What a browser app installs: the contract and the web client, without @srpc/client or
 * @srpc/server; @srpc/core comes along for its browser-safe `@srpc/core/portable` entry, the only
 * part of it @srpc/web loads (the page's type check below proves no Node typings are needed).
 */
const BROWSER_PACKAGES = ['@srpc/protocol', '@srpc/core', '@srpc/web', '@srpc/contract']

/**
 * A browser app's project: only BROWSER_PACKAGES (the Node packages are optional peers of
 * @srpc/contract, so npm installs neither) and typescript, no @types/node; a typed client over a
 * WebClient under `tsc --strict` with lib DOM and skipLibCheck off, so every shipped .d.ts it
 * loads must resolve without the Node packages and without Node's types.
 */
async function typecheckBrowser(packages, dir) {
  const tarballs = BROWSER_PACKAGES.map((name) => packages.find((p) => p.name === name).tarball)
  await writeFile(
    join(dir, 'package.json'),
    `${JSON.stringify({ name: 'srpc-pack-check-browser', version: '0.0.0', private: true }, null, 2)}\n`,
  )
  await mustRun(
    'npm install',
    'npm',
    ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs, TYPESCRIPT],
    {
      cwd: dir,
      timeout: 120_000,
    },
  )
  const present = ['@srpc/client', '@srpc/server', '@types/node'].filter((name) =>
    existsSync(join(dir, 'node_modules', name)),
  )
  if (present.length > 0) throw new StepError('a browser app got Node packages', present.join(', '))
  await writeFile(join(dir, 'page.ts'), BROWSER_CONSUMER_SOURCE)
  await writeFile(
    join(dir, 'tsconfig.json'),
    `${JSON.stringify(
      {
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          lib: ['ES2022', 'DOM'],
          module: 'ESNext',
          moduleResolution: 'bundler',
          types: [],
          skipLibCheck: false,
        },
        files: ['page.ts'],
      },
      null,
      2,
    )}\n`,
  )
  const tsc = join(dir, 'node_modules', 'typescript', 'bin', 'tsc')
  await mustRun('tsc (browser)', process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir })
  return `${BROWSER_PACKAGES.join(', ')} alone, lib DOM, no @types/node: page.ts and the shipped .d.ts clean`
}

const BROWSER_CONSUMER_SOURCE = `import { contract, createClient, json, msgpack, session, unary } from '@srpc/contract'
import { RpcError, WebClient } from '@srpc/web'

/** A Standard Schema by hand: the page needs no schema library to type-check. */
interface Shape<T> {
  readonly '~standard': {
    readonly version: 1
    readonly vendor: string
    readonly validate: (value: unknown) => { value: T } | { issues: { message: string }[] }
    readonly types?: { readonly input: T; readonly output: T }
  }
}
function shape<T>(check: (value: unknown) => value is T): Shape<T> {
  return {
    '~standard': {
      version: 1,
      vendor: 'pack-check',
      validate: (value: unknown) => (check(value) ? { value } : { issues: [{ message: 'invalid' }] }),
    },
  }
}
const Text = shape((v): v is { text: string } => typeof v === 'object' && v !== null && typeof (v as { text?: unknown }).text === 'string')
const Chat = contract('chat', {
  say: unary({ input: Text, output: Text }),
  room: session({ input: Text, output: Text, codec: msgpack }),
}, { codec: json })

export async function page(): Promise<string> {
  const chat = createClient(new WebClient({ url: 'wss://127.0.0.1:1/srpc' }), Chat)
  try {
    const reply: { text: string } = await chat.say({ text: 'hi' }, { timeout: 1000 })
    const room = await chat.room({ closeTimeout: 100 })
    await room.send({ text: 'x' })
    // @ts-expect-error: a message is { text }, not a string. Fails to compile if the types collapsed to any.
    await room.send('x')
    return reply.text
  } catch (err) {
    return RpcError.is(err) ? err.code : 'error'
  }
}
`

/** Runs a root devDependency's binary on every tarball, two at a time. */
async function lintEach(packages, bin, argsFor) {
  const binary = join(root, 'node_modules', '.bin', WIN ? `${bin}.cmd` : bin)
  const failures = []
  const queue = [...packages]
  const worker = async () => {
    for (let pkg = queue.shift(); pkg; pkg = queue.shift()) {
      const result = await run(binary, argsFor(pkg.tarball), {
        env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      })
      if (result.code !== 0) failures.push(`${pkg.name} (exit ${result.code}):\n${result.output.trim()}`)
    }
  }
  await Promise.all([worker(), worker()])
  if (failures.length > 0) throw new StepError(`${failures.length} package(s) failed`, failures.join('\n\n'))
  return `${packages.length} packages clean`
}

// --- what the smoke scripts and the type-checked consumer contain -------------------------------

function smokeSource(kind) {
  const load =
    kind === 'esm'
      ? `import { Buffer } from 'node:buffer'
import { rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Code, Pool, RpcError } from '@srpc/client'
import { contract, createClient, implement, msgpack, unary } from '@srpc/contract'
import { otelClient, otelServer } from '@srpc/otel'
import { encodeFrame, Flags, FrameDecoder, RpcError as ProtocolRpcError } from '@srpc/protocol'
import { Server } from '@srpc/server'
import { ThreadPool } from '@srpc/threads'
import { selfSigned } from '@srpc/tlsutil'
import { RPC_EXIT_CODES } from '@srpc/cli'
import { execFile } from 'node:child_process'
import { WebClient } from '@srpc/web'
import WebSocket from 'ws'
`
      : `'use strict'
const { Buffer } = require('node:buffer')
const { rmSync, writeFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { Code, Pool, RpcError } = require('@srpc/client')
const { contract, createClient, implement, msgpack, unary } = require('@srpc/contract')
const { otelClient, otelServer } = require('@srpc/otel')
const { encodeFrame, Flags, FrameDecoder, RpcError: ProtocolRpcError } = require('@srpc/protocol')
const { Server } = require('@srpc/server')
const { ThreadPool } = require('@srpc/threads')
const { selfSigned } = require('@srpc/tlsutil')
const { RPC_EXIT_CODES } = require('@srpc/cli')
const { execFile } = require('node:child_process')
const { WebClient } = require('@srpc/web')
const WebSocket = require('ws')
`
  return `${load}
// Generated by scripts/pack-check.mjs (${kind}).
const KIND = '${kind}'
const WATCHDOG_MS = 20000
// Unref'd: it never keeps the process alive, but fires if a call hangs or shutdown leaves a handle open.
setTimeout(() => {
  console.error(\`smoke \${KIND}: timed out after \${WATCHDOG_MS / 1000} s (a call hung, or a handle stayed open after shutdown)\`)
  process.exit(2)
}, WATCHDOG_MS).unref()

let checks = 0
function expectBytes(what, actual, expected) {
  const a = Buffer.from(actual)
  const e = Buffer.from(expected)
  if (!a.equals(e)) {
    const show = (b) => (b.length > 64 ? \`\${b.subarray(0, 64).toString('hex')}… (\${b.length} bytes)\` : \`\${b.toString('hex')} (\${b.length} bytes)\`)
    throw new Error(\`\${what}: expected \${show(e)}, got \${show(a)}\`)
  }
  checks++
}
function expect(what, ok) {
  if (!ok) throw new Error(\`\${what}: check failed\`)
  checks++
}

async function main() {
  // @srpc/protocol on its own: a frame through the codec and back.
  const value = Buffer.from([0, 1, 2, 0xfe, 0xff, ...Buffer.from('héllo ✓')])
  const [frame] = new FrameDecoder().decode(encodeFrame(Flags.REQUEST, 7, '/route', value))
  expect('protocol: frame header', frame.flags === Flags.REQUEST && Number(frame.id) === 7 && frame.type === '/route')
  expectBytes('protocol: frame value', frame.value, value)

  // @srpc/threads: a task module on a worker thread and back.
  const taskFile = join(tmpdir(), \`srpc-smoke-\${process.pid}-\${KIND}.mjs\`)
  writeFileSync(taskFile, 'export default (x) => x * 2\\n')
  const threads = new ThreadPool({ filename: taskFile, maxThreads: 1 })
  try {
    expect('threads: task result', (await threads.run(undefined, 21)) === 42)
  } finally {
    await threads.close()
    rmSync(taskFile, { force: true })
  }

  const { serverOptions, clientOptions, cert } = await selfSigned(['127.0.0.1'])
  expect('tlsutil: client options verify', clientOptions.rejectUnauthorized === true)

  // @srpc/otel with no SDK registered: the OpenTelemetry API is a no-op, every call still works.
  const server = new Server({ address: '127.0.0.1:0', tls: serverOptions, interceptors: [otelServer()] })
  const handlerErrors = []
  server.on('error', (err) => handlerErrors.push(err))
  let sessionEnded = false
  server.mux.handle('/echo', (ctx) => ctx.payload)
  server.mux.handle('/count', async (ctx) => {
    const stream = ctx.stream()
    for (let i = 1; i <= 3; i++) await stream.writeChunk(\`chunk \${i}\`, false)
    await stream.writeChunk(value, true)
  })
  server.mux.handle('/chat', async (ctx) => {
    for await (const message of ctx.messages()) await ctx.sendMessage(Buffer.concat([Buffer.from('echo:'), message]))
    sessionEnded = true
  })
  const { port } = await server.listen()

  const pool = new Pool({ address: \`127.0.0.1:\${port}\`, tls: clientOptions, size: 1, interceptors: [otelClient()] })
  pool.on('error', () => {}) // background failures; every call reports its own
  try {
    expectBytes('unary: binary payload', await pool.call('/echo', value, { timeout: 5000 }), value)
    const large = Buffer.from('srpc pack-check '.repeat(6400)) // 100 KiB, compressible: goes through deflate
    expectBytes('unary: 100 KiB payload', await pool.call('/echo', large, { timeout: 5000 }), large)

    const chunks = []
    for await (const chunk of pool.callStream('/count', '', { timeout: 5000 })) chunks.push(Buffer.from(chunk))
    expect(\`stream: 4 chunks (got \${chunks.length})\`, chunks.length === 4)
    for (let i = 1; i <= 3; i++) expectBytes(\`stream: chunk \${i}\`, chunks[i - 1], \`chunk \${i}\`)
    expectBytes('stream: last chunk', chunks[3], value)

    const session = await pool.createBidirectionalSession('/chat')
    await session.send('hi')
    await session.send(value)
    expectBytes('session: first reply', await session.receive(), 'echo:hi')
    expectBytes('session: second reply', await session.receive(), Buffer.concat([Buffer.from('echo:'), value]))
    await session.close()
    expect('session: server handler finished after close', sessionEnded)

    // @srpc/contract: a typed method over msgpack, with a hand-written Standard Schema.
    const Num = {
      '~standard': {
        version: 1,
        vendor: 'pack-check',
        validate: (v) =>
          v !== null && typeof v === 'object' && typeof v.n === 'number'
            ? { value: v }
            : { issues: [{ message: 'n must be a number', path: ['n'] }] },
      },
    }
    const Calc = contract('calc', { double: unary({ input: Num, output: Num }) }, { codec: msgpack })
    implement(server, Calc, { double: ({ n }) => ({ n: n * 2 }) })
    const calc = createClient(pool, Calc)
    expect('contract: typed call', (await calc.double({ n: 21 }, { timeout: 5000 })).n === 42)
    try {
      await calc.double({ n: 'x' })
      throw new Error('contract: invalid input was accepted')
    } catch (err) {
      expect(\`contract: INVALID_ARGUMENT with issues (got \${err && err.code})\`, err instanceof RpcError && err.code === Code.INVALID_ARGUMENT && err.details.issues[0].path[0] === 'n')
    }

    try {
      await pool.call('/missing', '', { timeout: 5000 })
      throw new Error('unknown route: the call succeeded')
    } catch (err) {
      expect(\`unknown route: RpcError NOT_FOUND (got \${err && err.code} \${err && err.message})\`, err instanceof RpcError && err.code === Code.NOT_FOUND)
      expect('unknown route: RpcError from @srpc/protocol is the same class', err instanceof ProtocolRpcError)
    }
    // @srpc/cli: the installed \`srpc\` binary (node_modules/.bin) calls the server and exits by the table.
    writeFileSync('smoke-ca.pem', cert)
    const srpc = (args) =>
      new Promise((resolve) => {
        const bin = join(process.cwd(), 'node_modules', '.bin', process.platform === 'win32' ? 'srpc.cmd' : 'srpc')
        execFile(bin, args, { timeout: 10000, shell: process.platform === 'win32' }, (err, stdout, stderr) =>
          resolve({ code: err ? err.code : 0, stdout, stderr }),
        )
      })
    const cli = await srpc(['call', \`127.0.0.1:\${port}\`, '/echo', '-d', 'from the cli', '--ca', 'smoke-ca.pem'])
    expect(\`cli: srpc call prints the reply (got \${JSON.stringify(cli)})\`, cli.code === 0 && cli.stdout === 'from the cli\\n')
    const missing = await srpc(['call', \`127.0.0.1:\${port}\`, '/missing', '--ca', 'smoke-ca.pem'])
    expect(\`cli: NOT_FOUND exits \${RPC_EXIT_CODES.NOT_FOUND} (got \${missing.code})\`, missing.code === RPC_EXIT_CODES.NOT_FOUND)

    // @srpc/web over wss to the same server (Node 20 has no global WebSocket: ws, trusting the test certificate).
    const { url } = await server.listenWebSocket()
    class TrustingWebSocket extends WebSocket {
      constructor(address, protocols) {
        super(address, protocols, { ca: clientOptions.ca })
      }
    }
    const web = new WebClient({ url, WebSocket: TrustingWebSocket })
    try {
      expectBytes('web: unary over wss', await web.call('/echo', value, { timeout: 5000 }), value)
      const webChunks = []
      for await (const chunk of web.callStream('/count', '', { timeout: 5000 })) webChunks.push(chunk)
      expect(\`web: stream of 4 chunks (got \${webChunks.length})\`, webChunks.length === 4)
      const webSession = await web.createBidirectionalSession('/chat')
      await webSession.send('hi')
      expectBytes('web: session reply', await webSession.receive(), 'echo:hi')
      await webSession.close()
      try {
        await web.call('/missing', '', { timeout: 5000 })
        throw new Error('web: unknown route: the call succeeded')
      } catch (err) {
        expect('web: unknown route is RpcError NOT_FOUND', err instanceof RpcError && err.code === Code.NOT_FOUND)
      }
    } finally {
      await web.close()
    }
    expectBytes('health: the whole server is SERVING', await pool.call('/srpc.health/check', '', { timeout: 5000 }), '{"status":"SERVING"}')
    expect(\`server: no handler errors (\${handlerErrors.map(String).join('; ')})\`, handlerErrors.length === 0)
  } finally {
    await pool.close()
    await server.shutdown({ timeout: 2000 })
  }
}

main().then(
  () => console.log(\`smoke \${KIND}: \${checks} checks passed over TLS and wss; clients and server shut down\`),
  (err) => {
    console.error(\`smoke \${KIND} FAILED: \${err && err.stack ? err.stack : err}\`)
    process.exit(1)
  },
)
`
}

// No top-level await: the same source is checked as an ES module (.mts, .ts) and as CommonJS (.cts).
const CONSUMER_SOURCE = `// Generated by scripts/pack-check.mjs: uses the main API of every package, checked under --strict.
import { type CallOptions, ClientSession, ClientStream, Code, Pool, type PoolOptions, type PoolState, RpcError } from '@srpc/client'
import { type OtelClientOptions, otelClient, otelServer } from '@srpc/otel'
import { encodeFrame, Flags, type Frame, FrameDecoder, RpcError as ProtocolRpcError } from '@srpc/protocol'
import { type Context, type Handler, Server, type ServerOptions } from '@srpc/server'
import { contract, createClient, implement, json, unary } from '@srpc/contract'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { ThreadPool, type ThreadPoolOptions } from '@srpc/threads'
import { type WebClientOptions, type WebSession, WebClient, WebStream } from '@srpc/web'
import {
  type CertificateAuthority,
  clientTlsOptions,
  createCertificateAuthority,
  issueCertificate,
  type SelfSignedResult,
  selfSigned,
  serverTlsOptions,
  TlsUtilError,
  type TlsUtilErrorCode,
} from '@srpc/tlsutil'
import { EXIT_USAGE, exitCodeOf, RPC_EXIT_CODES } from '@srpc/cli'

export async function main(): Promise<string[]> {
  const seen: string[] = []
  const self: SelfSignedResult = await selfSigned(['127.0.0.1'])
  const ca: CertificateAuthority = await createCertificateAuthority()
  const leaf = await issueCertificate(ca, { usage: 'server', hosts: ['127.0.0.1'] })

  const options: ServerOptions = { address: '127.0.0.1:0', tls: serverTlsOptions(leaf), interceptors: [otelServer()] }
  const server = new Server(options)
  const echo: Handler = (ctx: Context) => ctx.payload
  server.mux.handle('/echo', echo)
  server.mux.handle('/count', async (ctx) => {
    await ctx.stream().writeChunk('1', true)
  })
  server.mux.handle('/chat', async (ctx) => {
    for await (const message of ctx.messages()) await ctx.sendMessage(message)
  })
  const { port }: { port: number } = await server.listen()

  const otel: OtelClientOptions = { serverAddress: '127.0.0.1', serverPort: port }
  const poolOptions: PoolOptions = { address: \`127.0.0.1:\${port}\`, tls: clientTlsOptions(ca.cert), size: 1, interceptors: [otelClient(otel)] }
  server.health.set('svc', 'SERVING')
  const pool = new Pool(poolOptions)
  const state: PoolState = pool.state
  seen.push(state, self.cert)
  const callOptions: CallOptions = { timeout: 1000 }
  const reply: Buffer = await pool.call('/echo', 'hi', callOptions)
  const stream: ClientStream = pool.callStream('/count')
  for await (const chunk of stream) seen.push(chunk.toString('utf8'))
  const session: ClientSession = await pool.createBidirectionalSession('/chat')
  await session.send(reply)
  const message: Buffer | undefined = await session.receive()
  await session.close()
  // @ts-expect-error: a route is a string. Fails to compile if the types collapsed to any.
  await pool.call(42)

  const Num: StandardSchemaV1<{ n: number }> = {
    '~standard': { version: 1, vendor: 'pack-check', validate: (v) => ({ value: v as { n: number } }) },
  }
  const Calc = contract('calc', { double: unary({ input: Num, output: Num }) }, { codec: json })
  implement(server, Calc, { double: ({ n }) => ({ n: n * 2 }) })
  const doubled: { n: number } = await createClient(pool, Calc).double({ n: 2 })
  // @ts-expect-error: the input is typed by the contract.
  await createClient(pool, Calc).double({ n: 'two' })
  seen.push(String(doubled.n))

  const frames: Frame[] = new FrameDecoder().decode(encodeFrame(Flags.REQUEST, 1, '/echo', reply))
  seen.push(frames[0].type, String(message))
  try {
    await pool.call('/missing')
  } catch (err) {
    if (err instanceof RpcError && err.code === Code.NOT_FOUND) seen.push(err.message)
    if (ProtocolRpcError.is(err, Code.NOT_FOUND)) seen.push(err.code)
    const exit: number = exitCodeOf(err)
    if (exit === RPC_EXIT_CODES[Code.NOT_FOUND] || exit === EXIT_USAGE) seen.push(String(exit))
    if (err instanceof TlsUtilError) {
      const code: TlsUtilErrorCode = err.code
      seen.push(code)
    }
  }
  await pool.close()

  const { url }: { url: string } = await server.listenWebSocket({ allowedOrigins: ['https://app.example'] })
  const webOptions: WebClientOptions = { url, reconnect: false }
  const web = new WebClient(webOptions)
  const webReply: Uint8Array = await web.call('/echo', 'hi', { timeout: 1000, signal: AbortSignal.timeout(2000) })
  const webStream: WebStream = web.callStream('/count')
  for await (const chunk of webStream) seen.push(String(chunk.length))
  const webSession: WebSession = await web.createBidirectionalSession('/chat', { metadata: { room: 'a' } })
  await webSession.send(webReply)
  seen.push(String((await webSession.receive())?.length))
  await web.close()
  await server.shutdown({ timeout: 1000 })

  const threadOptions: ThreadPoolOptions = { filename: new URL('file:///srv/tasks.mjs'), maxQueue: 1 }
  const offload = (threads: ThreadPool, ctx: Context): Promise<number> => threads.run<number>(ctx, 21)
  seen.push(String(threadOptions.maxQueue), typeof offload)
  return seen
}
`

// --- the run --------------------------------------------------------------------------------------

const results = []
async function step(name, fn, { skip } = {}) {
  if (skip) {
    console.log(`- ${name}: skipped (${skip})`)
    results.push('skipped')
    return false
  }
  const start = performance.now()
  try {
    const detail = await fn()
    console.log(`✓ ${name} (${((performance.now() - start) / 1000).toFixed(1)} s): ${detail}`)
    results.push('passed')
    return true
  } catch (err) {
    console.log(`✗ ${name} (${((performance.now() - start) / 1000).toFixed(1)} s): ${err.message}`)
    const detail = err instanceof StepError ? err.detail : err.stack
    if (detail) console.log(detail.replace(/^/gm, '    ').trimEnd())
    results.push('failed')
    return false
  }
}

const started = performance.now()
const packDir = await mkdtemp(join(tmpdir(), 'srpc-pack-'))
const projectDir = await mkdtemp(join(tmpdir(), 'srpc-consumer-'))
const browserDir = await mkdtemp(join(tmpdir(), 'srpc-browser-'))
// Interrupted (Ctrl-C, a CI timeout): still leave no temp folders behind.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const child of children) kill(child)
    for (const dir of [packDir, projectDir, browserDir]) rmSync(dir, { recursive: true, force: true })
    process.exit(130)
  })
}
try {
  const packages = await workspacePackages()
  const packed = await step('pack', () => pack(packages, packDir))
  const installed = await step('install', () => install(packages, projectDir), {
    skip: !packed && 'pack failed',
  })
  const noInstall = !installed && 'install failed'
  await step('smoke esm', () => smoke(projectDir, 'esm'), { skip: noInstall })
  await step('smoke cjs', () => smoke(projectDir, 'cjs'), { skip: noInstall })
  for (const mode of ['nodenext', 'node16', 'bundler']) {
    await step(`types ${mode}`, () => typecheck(projectDir, mode), { skip: noInstall })
  }
  const noTarballs = !packed && 'pack failed'
  await step('types browser', () => typecheckBrowser(packages, browserDir), { skip: noTarballs })
  await step('publint', () => lintEach(packages, 'publint', (tgz) => ['run', tgz, '--strict']), {
    skip: noTarballs,
  })
  // No --profile and no --ignore-rules: every resolution mode must be clean (see the header).
  await step('attw', () => lintEach(packages, 'attw', (tgz) => [tgz, '--format', 'ascii']), {
    skip: noTarballs,
  })
} finally {
  if (keep) console.log(`kept ${packDir}, ${projectDir} and ${browserDir}`)
  else
    await Promise.all([
      rm(packDir, { recursive: true, force: true }),
      rm(projectDir, { recursive: true, force: true }),
      rm(browserDir, { recursive: true, force: true }),
    ])
}
const failed = results.filter((r) => r === 'failed').length
const skipped = results.filter((r) => r === 'skipped').length
const seconds = ((performance.now() - started) / 1000).toFixed(1)
console.log(
  failed === 0
    ? `pack-check: all ${results.length} steps passed in ${seconds} s`
    : `pack-check: ${failed} of ${results.length} steps failed, ${skipped} skipped (${seconds} s)`,
)
process.exitCode = failed === 0 && skipped === 0 ? 0 : 1
