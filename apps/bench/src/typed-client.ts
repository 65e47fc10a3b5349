/**
 * One client of the typed-services scenario, in its own process: `node typed-client.js TARGET
 * PORT CA_FILE WARMUP_MS MEASURE_MS`. Keeps 16 calls in flight on one connection (tRPC: HTTP/1.1
 * has no multiplexing, so undici opens up to 16 keep-alive connections), checks every reply, and
 * prints one JSON line: calls/s, p50/p99 µs, client CPU µs per call.
 */
import { readFileSync } from 'node:fs'
import * as grpc from '@grpc/grpc-js'
import { Pool } from '@srpc/client'
import { createClient } from '@srpc/contract'
import { createTRPCClient, httpLink } from '@trpc/client'
import {
  GRPC_JSON_SERVICE,
  JsonOrders,
  MsgpackOrders,
  type Order,
  order,
  RAW_ROUTE,
  type TypedTarget,
} from './typed/service'
import type { OrdersRouter } from './typed/trpc-router'

const IN_FLIGHT = 16

interface Target {
  call(seq: number): Promise<void>
  close(): Promise<void>
}

function checked(seq: number, reply: Order): void {
  if (reply.seq !== seq || reply.items.length !== 3) throw new Error(`wrong reply for call ${seq}`)
}

/** The raw request: the JSON text of order(seq), built by splicing the number into fixed text. */
const RAW_TEMPLATE = JSON.stringify(order(0)).split('"seq":0')
function rawRequest(seq: number): Buffer {
  return Buffer.from(`${RAW_TEMPLATE[0]}"seq":${seq}${RAW_TEMPLATE[1]}`)
}

async function open(target: TypedTarget, port: number, ca: string): Promise<Target> {
  switch (target) {
    case 'srpc-typed-json':
    case 'srpc-typed-msgpack':
    case 'srpc-raw':
    case 'srpc-raw-json':
    case 'srpc-typed-json-echo': {
      const pool = new Pool({ address: `127.0.0.1:${port}`, tls: { ca }, size: 1 })
      await pool.connect()
      const close = () => pool.close()
      if (target === 'srpc-raw') {
        return {
          call: (seq) => {
            const request = rawRequest(seq)
            return pool.call(RAW_ROUTE, request).then((reply) => {
              if (!reply.equals(request)) throw new Error(`wrong reply for call ${seq}`)
            })
          },
          close,
        }
      }
      if (target === 'srpc-raw-json') {
        // The glue a user writes without a contract: stringify, call, parse, trust the type.
        return {
          call: (seq) =>
            pool
              .call(RAW_ROUTE, JSON.stringify(order(seq)))
              .then((reply) => checked(seq, JSON.parse(reply.toString('utf8')) as Order)),
          close,
        }
      }
      const client = createClient(pool, target === 'srpc-typed-msgpack' ? MsgpackOrders : JsonOrders)
      return { call: (seq) => client.echo(order(seq)).then((reply) => checked(seq, reply)), close }
    }
    case 'trpc': {
      const client = createTRPCClient<OrdersRouter>({
        links: [httpLink({ url: `http://127.0.0.1:${port}` })],
      })
      return {
        call: (seq) => client.echo.mutate(order(seq)).then((reply) => checked(seq, reply)),
        close: async () => {},
      }
    }
    case 'grpc-json': {
      const Ctor = grpc.makeGenericClientConstructor(GRPC_JSON_SERVICE, 'Orders')
      const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(ca)), {
        'grpc.enable_channelz': 0,
      })
      await new Promise<void>((resolve, reject) =>
        client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())),
      )
      const echo = client.Echo.bind(client) as (
        request: Order,
        callback: (err: grpc.ServiceError | null, reply?: Order) => void,
      ) => void
      return {
        call: (seq) =>
          new Promise((resolve, reject) =>
            echo(order(seq), (err, reply) => {
              if (err) return reject(err)
              checked(seq, reply!)
              resolve()
            }),
          ),
        close: async () => client.close(),
      }
    }
  }
}

/**
 * The JSON a typed client cannot skip, alone: `order(seq)` to bytes and a reply's bytes back to an
 * object (`Buffer.from(JSON.stringify())`, `JSON.parse(toString())`), in a loop for `ms`, as client
 * CPU µs per call. Measured in the raw client's process after its window, on the same core.
 */
function jsonAlone(ms: number): number {
  const reply = Buffer.from(JSON.stringify(order(0)))
  let calls = 0
  const cpu = process.cpuUsage()
  const until = performance.now() + ms
  while (performance.now() < until) {
    for (let i = 0; i < 100; i++, calls++) {
      const request = Buffer.from(JSON.stringify(order(calls)))
      const decoded = JSON.parse(reply.toString('utf8')) as Order
      if (request.length < 200 || decoded.items.length !== 3) throw new Error('JSON alone: wrong bytes')
    }
  }
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / calls
}

async function run(target: TypedTarget, port: number, ca: string, warmupMs: number, measureMs: number) {
  const client = await open(target, port, ca)
  let seq = 0
  let measuring = false
  let stop = false
  let calls = 0
  const latencies: number[] = []
  const worker = async () => {
    while (!stop) {
      const started = performance.now()
      await client.call(seq++)
      if (measuring) {
        calls++
        latencies.push(performance.now() - started)
      }
    }
  }
  const workers = Array.from({ length: IN_FLIGHT }, worker)
  await new Promise((resolve) => setTimeout(resolve, warmupMs))
  measuring = true
  const cpu = process.cpuUsage()
  const t0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, measureMs))
  const used = process.cpuUsage(cpu)
  const elapsed = performance.now() - t0
  measuring = false
  stop = true
  await Promise.all(workers)
  await client.close()
  latencies.sort((a, b) => a - b)
  const jsonUsPerCall = target === 'srpc-raw' ? jsonAlone(Math.min(measureMs, 2000)) : undefined
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] * 1000
  return {
    target,
    calls,
    rate: calls / (elapsed / 1000),
    p50Us: at(0.5),
    p99Us: at(0.99),
    cpuUsPerCall: (used.user + used.system) / calls,
    jsonUsPerCall,
  }
}

const [target, port, caFile, warmup, measure] = process.argv.slice(2)
run(target as TypedTarget, Number(port), readFileSync(caFile, 'utf8'), Number(warmup), Number(measure)).then(
  (result) => {
    process.stdout.write(`${JSON.stringify(result)}\n`)
    process.exit(0)
  },
  (err) => {
    process.stderr.write(`typed client ${target} failed: ${err?.stack ?? err}\n`)
    process.exit(1)
  },
)
