#!/usr/bin/env node
// Server memory per TLS connection, in a server process of its own (bench g's setting without the
// bench): `node scripts/tls-memory-per-connection.mjs <root> <N> <raw|srpc> [calls] [snapshotPrefix]` (root: an absolute path).
// The parent opens N connections (srpc: N Pools of one connection, as g's client) to a server
// child (`--expose-gc`) and prints the server's memory after GC per connection, once connected and
// after `calls` rounds of one 64 B call per connection. `--load` makes `calls` seconds of g's load
// instead (each connection one call per second, spread evenly; prints p50/p99 in ms); `--spaces`
// prints V8's heap spaces (used and physical) per connection; `--server-flags="--trace-gc"` passes
// flags to the server; with a snapshot prefix, heap snapshots of the server idle, after the calls
// and (--load) mid-load are written. `--alloc` samples what the server allocates while the
// connections open (V8's sampling heap profiler, every 64 bytes, collected objects included) and
// prints the bytes per connection, in all and by site (srpc's two innermost frames, or Node's own
// frame where no srpc code is on the stack; the first 25, or `--top=N`).
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { connect } from 'node:tls'
import { fileURLToPath } from 'node:url'

const argv = process.argv.slice(2)
const option = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const flag = (name) => argv.includes(`--${name}`)
const [root, nArg, target, callsArg, snap] = argv.filter((a) => !a.startsWith('--'))
const N = Number(nArg),
  CALLS = Number(callsArg ?? 0)
const { selfSigned, clientTlsOptions } = await import(`${root}/packages/tlsutil/dist/index.js`)
if (flag('child')) {
  const { serverTlsOptions } = await import(`${root}/packages/tlsutil/dist/index.js`)
  const v8 = await import('node:v8')
  const tls = JSON.parse(option('tls'))
  let port
  if (target === 'srpc') {
    const { Server } = await import(`${root}/packages/server/dist/index.js`)
    const server = new Server({ address: '127.0.0.1:0', tls: serverTlsOptions(tls) })
    server.handle('/bench/echo', (ctx) => ctx.payload)
    ;({ port } = await server.listen())
  } else {
    const { createServer } = await import('node:tls')
    const s = createServer(serverTlsOptions(tls), (socket) => {
      socket.setNoDelay(true)
      socket.on('data', (d) => socket.write(d))
    })
    s.listen(0, '127.0.0.1')
    await once(s, 'listening')
    port = s.address().port
  }
  // A parent that goes away (killed, or its output closed under `| head`) takes the server with it.
  process.on('disconnect', () => process.exit(0))
  const { Session } = await import('node:inspector/promises')
  const inspector = new Session()
  inspector.connect()
  process.on('message', async (m) => {
    if (m.startSampling) {
      await inspector.post('HeapProfiler.startSampling', {
        samplingInterval: 64,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      })
      return process.send({ sampling: true })
    }
    if (m.stopSampling) {
      const { profile } = await inspector.post('HeapProfiler.stopSampling')
      return process.send({ allocated: allocationBySite(profile.head) })
    }
    if (m.snap) v8.writeHeapSnapshot(m.snap)
    if (m.snap?.endsWith('-mid.heapsnapshot')) return
    gc()
    gc()
    const u = process.memoryUsage()
    const spaces = Object.fromEntries(
      v8
        .getHeapSpaceStatistics()
        .map((x) => [x.space_name, { used: x.space_used_size, phys: x.physical_space_size }]),
    )
    process.send({
      mem: {
        rss: u.rss,
        heapUsed: u.heapUsed,
        heapTotal: u.heapTotal,
        external: u.external,
        arrayBuffers: u.arrayBuffers,
      },
      spaces,
    })
  })
  process.send({ port })
} else {
  const tls = await selfSigned(['127.0.0.1'])
  const material = JSON.stringify({ key: tls.key, cert: tls.cert, ca: tls.ca })
  const serverFlags = option('server-flags')?.split(' ') ?? []
  const child = fork(fileURLToPath(import.meta.url), [...argv, '--child', `--tls=${material}`], {
    execArgv: ['--expose-gc', ...serverFlags],
  })
  const [{ port }] = await once(child, 'message')
  const spaceLog = []
  const mem = async (s) => {
    child.send({ snap: s })
    const [m] = await once(child, 'message')
    spaceLog.push(m.spaces)
    return m.mem
  }
  await new Promise((r) => setTimeout(r, 200))
  const before = await mem()
  if (flag('alloc')) {
    child.send({ startSampling: true })
    await once(child, 'message')
  }
  const clients = []
  const { Pool } = await import(`${root}/packages/client/dist/index.js`)
  const payload = Buffer.alloc(64)
  for (let i = 0; i < N; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, N - i) }, async () => {
        if (target === 'srpc') {
          const pool = new Pool({ address: `127.0.0.1:${port}`, tls: clientTlsOptions(tls.ca), size: 1 })
          pool.on('error', () => {})
          await pool.connect()
          clients.push({ call: () => pool.call('/bench/echo', payload), close: () => pool.close() })
        } else {
          const s = connect({ host: '127.0.0.1', port, ...clientTlsOptions(tls.ca) })
          await once(s, 'secureConnect')
          clients.push({
            call: () =>
              new Promise((r) => {
                s.once('data', r)
                s.write(payload)
              }),
            close: () => s.end(),
          })
        }
      }),
    )
  }
  await new Promise((r) => setTimeout(r, 500))
  if (flag('alloc')) {
    child.send({ stopSampling: true })
    const [{ allocated }] = await once(child, 'message')
    const total = allocated.reduce((sum, [, bytes]) => sum + bytes, 0)
    console.log(`allocated while opening: ${(total / N).toFixed(0)} B per connection; by site:`)
    for (const [site, bytes] of allocated.slice(0, Number(option('top') ?? 25)))
      console.log(`${(bytes / N).toFixed(0).padStart(7)}  ${site}`)
  }
  const connected = await mem(snap ? `${snap}-idle.heapsnapshot` : undefined)
  if (flag('load')) {
    // g-like: each connection 1 call/s, spread evenly, for CALLS seconds
    const total = N * CALLS,
      begin = performance.now() + 50
    let next = 0,
      done = 0
    const lat = []
    if (snap) setTimeout(() => child.send({ snap: `${snap}-mid.heapsnapshot` }), CALLS * 500)
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now()
        while (next < total && begin + Math.floor(next / N) * 1000 + ((next % N) * 1000) / N <= now) {
          const k = next++,
            t0 = performance.now()
          clients[k % N].call().then(() => {
            lat.push(performance.now() - t0)
            if (++done === total) resolve()
          })
        }
        if (next < total) setTimeout(tick, 1)
      }
      tick()
    })
    lat.sort((a, b) => a - b)
    console.log('p50', lat[lat.length >> 1].toFixed(3), 'p99', lat[Math.floor(lat.length * 0.99)].toFixed(3))
  } else
    for (let c = 0; c < CALLS; c++) {
      await Promise.all(clients.map((x) => x.call()))
      await new Promise((r) => setTimeout(r, 20))
    }
  await new Promise((r) => setTimeout(r, 500))
  const after = await mem(snap && CALLS ? `${snap}-calls.heapsnapshot` : undefined)
  const kib = (a, b, k) => ((a[k] - b[k]) / N / 1024).toFixed(2)
  const row = (m) =>
    Object.fromEntries(
      ['rss', 'heapUsed', 'heapTotal', 'external', 'arrayBuffers'].map((k) => [k, Number(kib(m, before, k))]),
    )
  console.log(JSON.stringify({ target, N, connected: row(connected), afterCalls: row(after) }))
  if (flag('spaces')) {
    const [b, , a] = spaceLog
    for (const k of Object.keys(a))
      console.log(
        k.padEnd(24),
        'used',
        ((a[k].used - b[k].used) / N / 1024).toFixed(2),
        'phys',
        ((a[k].phys - b[k].phys) / N / 1024).toFixed(2),
      )
  }
  await Promise.all(clients.map((c) => c.close()))
  child.kill()
  process.exit(0)
}

/** Sampled bytes by site, largest first: srpc's two innermost frames, or Node's own frame. */
function allocationBySite(head) {
  const bySite = new Map()
  const walk = (node, srpcFrames) => {
    const { functionName, url, lineNumber } = node.callFrame
    const frame = `${functionName || '(anonymous)'} ${url.split('/').slice(-3).join('/')}:${lineNumber + 1}`
    const frames = url.includes('/packages/') ? [...srpcFrames, frame] : srpcFrames
    if (node.selfSize > 0) {
      const site = frames.length > 0 ? frames.slice(-2).reverse().join(' <- ') : `(node) ${frame}`
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize)
    }
    for (const child of node.children) walk(child, frames)
  }
  walk(head, [])
  return [...bySite].sort((a, b) => b[1] - a[1])
}
