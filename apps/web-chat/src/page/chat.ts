// The chat page: joins the room over a WebSocket session, renders every numbered message, and
// rejoins by itself after the connection drops (the client reconnects with backoff).
import { RpcError, WebClient, type WebSession } from '@srpc/web'

interface RoomMessage {
  seq: number
  from: string
  text: string
}

const params = new URLSearchParams(location.search)
const name = params.get('name') ?? `guest-${Math.floor(Math.random() * 1000)}`
const client = new WebClient({
  url: params.get('server') ?? `wss://${location.host}/srpc`,
  backoff: { initial: 100, max: 1000 },
})

const list = document.querySelector<HTMLOListElement>('#messages')!
const form = document.querySelector<HTMLFormElement>('#send')!
const input = document.querySelector<HTMLInputElement>('#text')!
const status = document.querySelector<HTMLElement>('#status')!
document.querySelector<HTMLElement>('#me')!.textContent = name

let session: WebSession | undefined

function show(state: string): void {
  status.textContent = state
  document.body.dataset.state = state
}

client.on('stateChange', ({ to }) => show(session && to === 'ready' ? 'joined' : to))

function render(message: RoomMessage): void {
  const item = document.createElement('li')
  item.dataset.seq = String(message.seq)
  item.className = message.from === 'room' ? 'system' : message.from === name ? 'mine' : ''
  const who = document.createElement('b')
  who.textContent = message.from === 'room' ? '' : `${message.from}: `
  item.append(who, message.text)
  list.append(item)
  item.scrollIntoView({ block: 'end' })
}

async function stayInRoom(): Promise<void> {
  for (;;) {
    try {
      session = await client.createBidirectionalSession('/chat/join', {
        metadata: { name },
        waitForReady: true,
        timeout: 0,
      })
      show('joined')
      for await (const bytes of session) render(JSON.parse(new TextDecoder().decode(bytes)))
    } catch (err) {
      show(RpcError.is(err) ? `disconnected (${err.code})` : 'disconnected')
    }
    session = undefined
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault()
  const text = input.value.trim()
  if (!text || !session) return
  input.value = ''
  session.send(text).catch((err) => show(`send failed (${RpcError.is(err) ? err.code : 'error'})`))
})

void stayInRoom()
