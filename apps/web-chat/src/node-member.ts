// A Node member of the chat room, over TLS with the Node Pool and the same typed contract as the
// page: prints every message, sends each line typed on stdin.
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Pool } from '@srpc/client'
import { createClient } from '@srpc/contract'
import { clientTlsOptions, ensureCertificateSet } from '@srpc/tlsutil'
import { ChatContract } from './chat-contract'

const name = process.argv[2] ?? 'node'
const certDir = process.env.SRPC_CERT_DIR ?? fileURLToPath(new URL('../../../.srpc-certs', import.meta.url))
const certs = await ensureCertificateSet(certDir, { hosts: ['127.0.0.1', 'localhost', '::1'] })
const pool = new Pool({
  address: process.env.SRPC_ADDRESS ?? '127.0.0.1:8446',
  tls: clientTlsOptions(certs.ca),
})
const session = await createClient(pool, ChatContract).join({ metadata: { name } })
const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  if (line.trim()) session.send({ text: line }).catch((err) => console.error(`send failed: ${err.code}`))
})
lines.on('close', () => void session.close().then(() => pool.close()))
for await (const { seq, from, text } of session) {
  console.log(`#${seq} ${from === 'room' ? '' : `${from}: `}${text}`)
}
lines.close()
await pool.close()
