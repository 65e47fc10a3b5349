// A server stream rendered in the page: Start reads the contract's `ticks` with `for await`,
// Stop breaks the loop, which cancels the handler on the server. The outcome goes to
// body[data-stream].
import { createClient } from '@srpc/contract'
import { RpcError, WebClient } from '@srpc/web'
import { ChatContract } from '../chat-contract'

const params = new URLSearchParams(location.search)
const client = new WebClient({ url: params.get('server') ?? `wss://${location.host}/srpc` })
const chat = createClient(client, ChatContract)
const list = document.querySelector<HTMLUListElement>('#ticks')!
let stop = false

document.querySelector('#start')!.addEventListener('click', async () => {
  stop = false
  document.body.dataset.stream = 'running'
  try {
    for await (const { n } of chat.ticks({ count: Number(params.get('count') ?? 10) })) {
      const item = document.createElement('li')
      item.textContent = `tick ${n}`
      list.append(item)
      if (stop) break
    }
    document.body.dataset.stream = stop ? 'cancelled' : 'done'
  } catch (err) {
    document.body.dataset.stream = `error:${RpcError.is(err) ? err.code : String(err)}`
  }
})
document.querySelector('#stop')!.addEventListener('click', () => {
  stop = true
})
