// Calls the contract's `echo` (raw bytes) on `?server=` and reports to body[data-result]: `ok`, or `error:CODE` (a refused
// origin surfaces as UNAVAILABLE: browsers hide why a WebSocket failed). `?rounds=N` also
// measures N sequential round trips and reports their p50 in body[data-p50] (µs).
import { createClient } from '@srpc/contract'
import { RpcError, WebClient } from '@srpc/web'
import { ChatContract } from '../chat-contract'

const params = new URLSearchParams(location.search)
const client = new WebClient({
  url: params.get('server') ?? `wss://${location.host}/srpc`,
  reconnect: false,
  connectTimeout: 5000,
})
const chat = createClient(client, ChatContract)

async function probe(): Promise<void> {
  try {
    const ping = new TextEncoder().encode('ping')
    const reply = new TextDecoder().decode(await chat.echo(ping, { timeout: 5000 }))
    if (reply !== 'ping') throw new Error(`echo said ${reply}`)
    const rounds = Number(params.get('rounds') ?? 0)
    if (rounds > 0) {
      const times: number[] = []
      const payload = new Uint8Array(Number(params.get('size') ?? 16))
      for (let i = 0; i < rounds; i++) {
        const started = performance.now()
        await chat.echo(payload)
        times.push(performance.now() - started)
      }
      times.sort((a, b) => a - b)
      document.body.dataset.p50 = String(Math.round(times[Math.floor(times.length / 2)] * 1000))
      document.body.dataset.p99 = String(Math.round(times[Math.floor(times.length * 0.99)] * 1000))
    }
    document.body.dataset.result = 'ok'
  } catch (err) {
    document.body.dataset.result = `error:${RpcError.is(err) ? err.code : String(err)}`
  } finally {
    await client.close({ timeout: 0 })
  }
}

void probe()
