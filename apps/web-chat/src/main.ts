// The chat server: serves the page over HTTPS, browsers over wss, Node members over TLS.
//   node apps/web-chat/dist/main.js   → open the printed https:// URL in two browser windows
//   node apps/web-chat/dist/node-member.js alice   → join the same room from a terminal
import { fileURLToPath } from 'node:url'
import { ensureCertificateSet, serverTlsOptions } from '@srpc/tlsutil'
import { startChatServer } from './chat-server'

const certDir = process.env.SRPC_CERT_DIR ?? fileURLToPath(new URL('../../../.srpc-certs', import.meta.url))
const certs = await ensureCertificateSet(certDir, { hosts: ['127.0.0.1', 'localhost', '::1'] })
const chat = await startChatServer({
  tls: serverTlsOptions(certs.server),
  webAddress: process.env.SRPC_WEB_ADDRESS ?? '127.0.0.1:8445',
  tlsAddress: process.env.SRPC_ADDRESS ?? '127.0.0.1:8446',
})
console.log(`web-chat: open ${chat.pageUrl}?name=you (certificate from ${certDir}/ca.crt)`)
console.log(`web-chat: Node members: node apps/web-chat/dist/node-member.js <name>`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log('web-chat: shutting down')
    chat.server.shutdown({ timeout: 2000 }).then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
