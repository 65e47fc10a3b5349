/**
 * What the typed-services scenario calls: one unary echo of a ~300-byte JSON object, as an srpc
 * contract (JSON and MessagePack), a raw srpc route, a tRPC procedure and a grpc-js method with
 * JSON serialisers. The server of every target validates the input with the same zod schema
 * where the framework validates (srpc typed, tRPC); raw srpc and grpc-js only echo.
 */
import type * as grpc from '@grpc/grpc-js'
import { contract, msgpack, unary } from '@srpc/contract'
import { z } from 'zod'

export const Order = z.object({
  seq: z.number().int(),
  id: z.string(),
  customer: z.object({ name: z.string(), email: z.string(), tier: z.enum(['free', 'pro', 'team']) }),
  items: z.array(z.object({ sku: z.string(), qty: z.number().int(), price: z.number() })),
  tags: z.array(z.string()),
  createdAt: z.string(),
  paid: z.boolean(),
})
export type Order = z.infer<typeof Order>

/** The request of call `seq`: about 300 bytes of JSON. */
export function order(seq: number): Order {
  return {
    seq,
    id: 'ord_7f3a9c2e4b1d',
    customer: { name: 'Ada Lovelace', email: 'ada@example.com', tier: 'pro' },
    items: [
      { sku: 'SKU-1001', qty: 2, price: 19.99 },
      { sku: 'SKU-2002', qty: 1, price: 5.5 },
      { sku: 'SKU-3003', qty: 4, price: 0.99 },
    ],
    tags: ['priority', 'gift', 'eu'],
    createdAt: '2026-12-01T10:00:00.000Z',
    paid: true,
  }
}

export const JsonOrders = contract('orders', { echo: unary({ input: Order, output: Order }) })
export const MsgpackOrders = contract(
  'orders-mp',
  { echo: unary({ input: Order, output: Order }) },
  { codec: msgpack },
)

export const RAW_ROUTE = '/orders-raw/echo'

export const GRPC_JSON_SERVICE = {
  Echo: {
    path: '/bench.Orders/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Order) => Buffer.from(JSON.stringify(value)),
    requestDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as Order,
    responseSerialize: (value: Order) => Buffer.from(JSON.stringify(value)),
    responseDeserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')) as Order,
  },
} satisfies grpc.ServiceDefinition

export const TYPED_TARGETS = [
  'srpc-typed-json',
  'srpc-typed-msgpack',
  'srpc-raw',
  'srpc-raw-json',
  'trpc',
  'grpc-json',
] as const
/**
 * Diagnostic targets, run only when named with `--targets`: the typed JSON client against a
 * server that echoes the bytes of `/orders/echo` without decoding or validating them. It
 * separates what the typed client costs from how fast the typed server answers (a slower server
 * changes how many replies the client handles per read).
 */
export const DIAGNOSTIC_TARGETS = ['srpc-typed-json-echo'] as const
export type TypedTarget = (typeof TYPED_TARGETS)[number] | (typeof DIAGNOSTIC_TARGETS)[number]

export const TARGET_NAMES: Record<TypedTarget, string> = {
  'srpc-typed-json': 'srpc typed (JSON)',
  'srpc-typed-msgpack': 'srpc typed (MessagePack)',
  'srpc-raw': 'srpc raw bytes (pre-encoded)',
  'srpc-raw-json': 'srpc raw + hand-written JSON',
  trpc: 'tRPC 11 (HTTP/1.1)',
  'grpc-json': 'grpc-js (JSON serialisers)',
  'srpc-typed-json-echo': 'srpc typed (JSON) client, echo server',
}
