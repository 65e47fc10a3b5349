/**
 * One server of the typed-services scenario, in its own process: `node typed-server.js TARGET
 * KEY_FILE CERT_FILE`. Prints `{"port":N}` on stdout when listening; exits on SIGTERM.
 */
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import * as grpc from '@grpc/grpc-js'
import { implement, routeOf } from '@srpc/contract'
import { Server } from '@srpc/server'
import { createHTTPHandler } from '@trpc/server/adapters/standalone'
import {
  GRPC_JSON_SERVICE,
  JsonOrders,
  MsgpackOrders,
  type Order,
  RAW_ROUTE,
  type TypedTarget,
} from './typed/service'
import { ordersRouter } from './typed/trpc-router'

async function start(
  target: TypedTarget,
  key: string,
  cert: string,
): Promise<{ port: number; close: () => void }> {
  switch (target) {
    case 'srpc-typed-json':
    case 'srpc-typed-msgpack':
    case 'srpc-raw':
    case 'srpc-raw-json':
    case 'srpc-typed-json-echo': {
      const server = new Server({ address: '127.0.0.1:0', tls: { key, cert } })
      if (target === 'srpc-raw' || target === 'srpc-raw-json')
        server.handle(RAW_ROUTE, (ctx) => ctx.payload, { kind: 'unary' })
      else if (target === 'srpc-typed-json-echo')
        server.handle(routeOf(JsonOrders.name, 'echo'), (ctx) => ctx.payload, { kind: 'unary' })
      else
        implement(server, target === 'srpc-typed-json' ? JsonOrders : MsgpackOrders, {
          echo: (order) => order,
        })
      const { port } = await server.listen()
      return { port, close: () => void server.destroy() }
    }
    case 'trpc': {
      const server = createHttpServer(
        { keepAliveTimeout: 60_000 },
        createHTTPHandler({ router: ordersRouter }),
      )
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const address = server.address()
      return { port: typeof address === 'object' && address ? address.port : 0, close: () => server.close() }
    }
    case 'grpc-json': {
      const server = new grpc.Server({ 'grpc.enable_channelz': 0 })
      server.addService(GRPC_JSON_SERVICE, {
        Echo: (call: grpc.ServerUnaryCall<Order, Order>, callback: grpc.sendUnaryData<Order>) =>
          callback(null, call.request),
      })
      const credentials = grpc.ServerCredentials.createSsl(
        null,
        [{ private_key: Buffer.from(key), cert_chain: Buffer.from(cert) }],
        false,
      )
      const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', credentials, (err, bound) => (err ? reject(err) : resolve(bound))),
      )
      return { port, close: () => server.forceShutdown() }
    }
  }
}

const [target, keyFile, certFile] = process.argv.slice(2) as [TypedTarget, string, string]
start(target, readFileSync(keyFile, 'utf8'), readFileSync(certFile, 'utf8')).then(
  ({ port, close }) => {
    process.stdout.write(`${JSON.stringify({ port })}\n`)
    process.on('SIGTERM', () => {
      close()
      process.exit(0)
    })
  },
  (err) => {
    process.stderr.write(`typed server ${target} failed: ${err?.stack ?? err}\n`)
    process.exit(1)
  },
)
