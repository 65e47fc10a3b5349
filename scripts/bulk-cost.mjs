#!/usr/bin/env node
// CPU per operation of BOTH ends of srpc over TLS, for the large-payload paths: a server and a
// client process (pinned to cores 0 and 1 with taskset when it works), 1 s warmup, then
// `seconds` measured; each process reports process.cpuUsage() over the measured window.
// On a shared machine CPU per operation is steadier than throughput, and the bench reports the
// client's only. `node scripts/bulk-cost.mjs [ROOT] MODE [seconds]` after a build; ROOT is a
// built checkout (default: this one), so two checkouts can be compared, alternating runs.
// MODE: u1m (unary echo 1 MiB, 4 in flight), f16 (unary echo 16 KiB, 16 in flight),
// d (server stream of 2,000 × 64 KiB), eow (session one-way, 1 KiB messages).
// SRPC_BULK_COST_NODE_ARGS passes flags to both processes (e.g. --trace-gc, --cpu-prof).
import { execFileSync, fork } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const args = process.argv.slice(2)
const root =
  args[0] && !(args[0] in { u1m: 1, f16: 1, d: 1, eow: 1 })
    ? args.shift()
    : fileURLToPath(new URL('..', import.meta.url))
const [mode = 'u1m', seconds = '3'] = args
const MODES = {
  u1m: { size: 1 << 20, inFlight: 4 },
  f16: { size: 16 * 1024, inFlight: 16 },
  d: { size: 64 * 1024 },
  eow: { size: 1024 },
}
const m = MODES[mode]
if (m === undefined) throw new Error(`unknown mode ${mode} (u1m, f16, d, eow)`)
const load = createRequire(`${root}/apps/bench/package.json`)
const { Server } = load('@srpc/server')
const { Pool } = load('@srpc/client')
const tlsutil = load('@srpc/tlsutil')
const role = process.env.SRPC_BULK_COST_ROLE
const execArgv = process.env.SRPC_BULK_COST_NODE_ARGS ? process.env.SRPC_BULK_COST_NODE_ARGS.split(' ') : []
const STREAM_CHUNKS = 2000

function pin(pid, core) {
  try {
    execFileSync('taskset', ['-pc', String(core), String(pid)], { stdio: 'ignore' })
  } catch {}
}

if (role === undefined) {
  const cert = await tlsutil.selfSigned(['127.0.0.1'])
  const child = (name) =>
    fork(process.argv[1], [root, mode, seconds], {
      env: { ...process.env, SRPC_BULK_COST_ROLE: name },
      execArgv,
    })
  const server = child('server')
  server.send({ type: 'listen', cert })
  const port = await new Promise((resolve) => server.once('message', (msg) => resolve(msg.port)))
  pin(server.pid, 0)
  const client = child('client')
  pin(client.pid, 1)
  client.on('message', (msg) => {
    if (msg.type === 'measure') server.send({ type: 'measure' })
    if (msg.type !== 'done') return
    server.once('message', (s) => {
      const label = root.replace(/\/$/, '').split('/').pop()
      console.log(
        `${mode} ${label}: ${(msg.ops / msg.seconds).toFixed(0)} ops/s, ${((msg.ops * m.size) / msg.seconds / 1e6).toFixed(0)} MB/s, ` +
          `CPU µs/op client ${(msg.cpu / msg.ops).toFixed(1)} server ${(s.cpu / msg.ops).toFixed(1)}`,
      )
      server.send({ type: 'exit' })
      client.send({ type: 'exit' })
    })
    server.send({ type: 'report' })
  })
  client.send({ type: 'run', cert, port })
} else if (role === 'server') {
  let start
  process.on('message', async (msg) => {
    if (msg.type === 'listen') {
      const { key, cert, ca } = msg.cert
      const server = new Server({
        address: '127.0.0.1:0',
        tls: tlsutil.serverTlsOptions({ key, cert, ca }),
        compression: false,
      })
      server.handle('/echo', (ctx) => ctx.payload)
      server.handle('/stream', async (ctx) => {
        const stream = ctx.stream()
        const chunk = Buffer.alloc(m.size, 7)
        for (let i = 0; i < STREAM_CHUNKS; i++) await stream.writeChunk(chunk, i === STREAM_CHUNKS - 1)
      })
      server.handle('/sink', async (ctx) => {
        let bytes = 0
        for await (const message of ctx.messages()) bytes += message.length
        await ctx.sendMessage(String(bytes))
      })
      const { port } = await server.listen()
      process.send({ port })
    } else if (msg.type === 'measure') start = process.cpuUsage()
    else if (msg.type === 'report') {
      const used = process.cpuUsage(start)
      process.send({ cpu: used.user + used.system })
    } else if (msg.type === 'exit') process.exit(0)
  })
} else {
  process.on('message', async (msg) => {
    if (msg.type === 'exit') process.exit(0)
    const pool = new Pool({
      address: `127.0.0.1:${msg.port}`,
      tls: tlsutil.clientTlsOptions(msg.cert.ca),
      compression: false,
    })
    pool.on('error', () => {})
    await pool.connect()
    let ops = 0
    let measuring = false
    let started = 0
    let cpu
    setTimeout(() => {
      measuring = true
      started = performance.now()
      cpu = process.cpuUsage()
      process.send({ type: 'measure' })
    }, 1000)
    const until = performance.now() + 1000 + Number(seconds) * 1000
    const count = () => {
      if (measuring) ops++
    }
    if (mode === 'u1m' || mode === 'f16') {
      const payload = Buffer.alloc(m.size)
      for (let i = 0; i < m.size; i++) payload[i] = (i * 31) & 0xff
      await new Promise((resolve, reject) => {
        let active = 0
        const go = () => {
          active++
          pool.call('/echo', payload).then((reply) => {
            active--
            if (!reply.equals(payload)) return reject(new Error('wrong reply'))
            count()
            if (performance.now() < until) go()
            else if (active === 0) resolve()
          }, reject)
        }
        for (let i = 0; i < m.inFlight; i++) go()
      })
    } else if (mode === 'd') {
      while (performance.now() < until) {
        for await (const chunk of pool.callStream('/stream', Buffer.alloc(1))) {
          if (chunk.length !== m.size) throw new Error('wrong chunk')
          count()
        }
      }
    } else {
      const session = await pool.createBidirectionalSession('/sink')
      const message = Buffer.alloc(m.size, 3)
      while (performance.now() < until) {
        for (let i = 0; i < 64; i++) {
          session.send(message).catch(() => {})
          count()
        }
        await session.send(message)
        count()
      }
    }
    const used = process.cpuUsage(cpu)
    process.send({
      type: 'done',
      ops,
      seconds: (performance.now() - started) / 1000,
      cpu: used.user + used.system,
    })
    await pool.close()
  })
}
