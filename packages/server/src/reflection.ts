import type { Mux, RouteEntry } from './mux'

/** Lists the server's routes: `{"routes":[{"route","kind","input","output","codec","description"}]}`. */
export const REFLECTION_LIST_ROUTE = '/srpc.reflection/list'

/**
 * Whether reflection is on when the `reflection` option is not given: on, except when
 * `NODE_ENV` is `production`, where the route list (and its schemas) is something an attacker
 * would like to read and a service rarely needs to publish. Pass `reflection: true` to keep it.
 */
export function defaultReflection(): boolean {
  return process.env.NODE_ENV !== 'production'
}

/**
 * Registers `/srpc.reflection/list`: every route registered at the time of the call, in
 * registration order, with what its registration said (kind; for routes from a contract the
 * JSON Schema of input and output, and the codec). Fields a registration did not give are absent.
 */
export function registerReflection(mux: Mux): void {
  mux.handle(REFLECTION_LIST_ROUTE, () => JSON.stringify({ routes: mux.list().map(describeRoute) }), {
    kind: 'unary',
    codec: 'json',
    output: {
      type: 'object',
      properties: {
        routes: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              route: { type: 'string' },
              kind: { enum: ['unary', 'server-stream', 'session'] },
              input: { type: 'object' },
              output: { type: 'object' },
              codec: { type: 'string' },
              description: { type: 'string' },
            },
            required: ['route'],
          },
        },
      },
      required: ['routes'],
    },
    description: 'Every route of this server, with its kind and schemas',
  })
}

function describeRoute(entry: RouteEntry): RouteEntry {
  const { route, kind, input, output, codec, description } = entry
  return { route, kind, input, output, codec, description }
}
