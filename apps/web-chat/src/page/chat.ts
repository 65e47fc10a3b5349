// The chat page: joins the room over the contract's typed `join` session, renders every numbered
// message, and rejoins by itself after the connection drops (the client reconnects with
// backoff). A line the server's schema refuses ends the session with INVALID_ARGUMENT: the page
// shows why (body[data-refused] holds the code and the issues) and rejoins.
import { createClient, type TypedClientSession } from '@srpc/contract'
import { RpcError, WebClient } from '@srpc/web'
import { ChatContract, type RoomMessage } from '../chat-contract'

const params = new URLSearchParams(location.search)
const name = params.get('name') ?? `guest-${Math.floor(Math.random() * 1000)}`
const client = new WebClient({
  url: params.get('server') ?? `wss://${location.host}/srpc`,
  backoff: { initial: 100, max: 1000 },
})
const chat = createClient(client, ChatContract)

const list = document.querySelector<HTMLOListElement>('#messages')!
const form = document.querySelector<HTMLFormElement>('#send')!
const input = document.querySelector<HTMLInputElement>('#text')!
const status = document.querySelector<HTMLElement>('#status')!
document.querySelector<HTMLElement>('#me')!.textContent = name

let session: TypedClientSession<{ text: string }, RoomMessage> | undefined

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

/** A refusal from the server's schema: its code and issues, for the person and for tests. */
function refused(err: RpcError): void {
  const issues =
    (err.details as { issues?: { path: unknown[]; message: string }[] } | undefined)?.issues ?? []
  document.body.dataset.refused = JSON.stringify({ code: err.code, issues })
  const item = document.createElement('li')
  item.className = 'system refused'
  item.textContent = `not sent: ${issues.map((issue) => issue.message).join('; ') || err.message}`
  list.append(item)
}

async function stayInRoom(): Promise<void> {
  for (;;) {
    try {
      session = await chat.join({ metadata: { name }, waitForReady: true, timeout: 0 })
      show('joined')
      for await (const message of session) render(message)
    } catch (err) {
      if (RpcError.is(err, 'INVALID_ARGUMENT')) refused(err)
      show(RpcError.is(err) ? `disconnected (${err.code})` : 'disconnected')
    }
    session = undefined
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault()
  const text = input.value
  if (!text.trim() || !session) return
  input.value = ''
  session.send({ text }).catch((err) => show(`send failed (${RpcError.is(err) ? err.code : 'error'})`))
})

void stayInRoom()
