import { Command } from 'commander'
import { act, examples, REFLECTION_TIMEOUT } from '../command-kit'
import { addConnectionOptions, addressAndRoute, type ConnectionFlags, openPool } from '../connection'
import { EXIT_OK } from '../exit-codes'
import { type Io, warnTo, write } from '../io'
import { listRoutes } from '../reflection'
import { summarizeSchema, table, truncate } from '../schema-summary'

/** Widest a schema cell gets in the table before it is cut (the full schema is in --json). */
const SCHEMA_WIDTH = 48

interface ListFlags extends ConnectionFlags {
  json?: boolean
}

export function listCommand(io: Io): Command {
  const command = new Command('list')
    .description("list the server's routes with their kind, codec and schemas (from reflection)")
    .argument('[ADDR]', 'server host:port (default: $SRPC_ADDRESS)')
    .option('--json', 'print the reflection answer as JSON, schemas in full')
  addConnectionOptions(command, { metadata: false })
  examples(command, [
    'srpc list 127.0.0.1:8443 --cert-dir .srpc-certs',
    `srpc list 127.0.0.1:8443 --json | jq -r '.routes[].route'`,
  ])
  return command.action(
    act(io, async (first: string | undefined, flags: ListFlags) => {
      const { address } = addressAndRoute(first, undefined, io.env, false)
      const pool = await openPool(address, flags, command, warnTo(io))
      try {
        const routes = await listRoutes(pool, REFLECTION_TIMEOUT)
        if (flags.json) {
          await write(io.stdout, `${JSON.stringify({ routes }, null, 2)}\n`)
          return EXIT_OK
        }
        const rows = [['ROUTE', 'KIND', 'CODEC', 'INPUT', 'OUTPUT', 'DESCRIPTION']]
        for (const entry of routes) {
          rows.push([
            entry.route,
            entry.kind ?? '-',
            entry.codec ?? '-',
            truncate(summarizeSchema(entry.input), SCHEMA_WIDTH),
            truncate(summarizeSchema(entry.output), SCHEMA_WIDTH),
            entry.description ?? '',
          ])
        }
        await write(io.stdout, `${table(rows)}\n`)
        return EXIT_OK
      } finally {
        await pool.close({ timeout: 1000 })
      }
    }),
  )
}
