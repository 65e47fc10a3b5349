// A server stream rendered in the page: Start reads /ticks with `for await`, Stop breaks the loop,
// which cancels the handler on the server. The outcome goes to body[data-stream].
import { RpcError, WebClient } from '@srpc/web'

const params = new URLSearchParams(location.search)
const client = new WebClient({ url: params.get('server') ?? `wss://${location.host}/srpc` })
const list = document.querySelector<HTMLUListElement>('#ticks')!
let stop = false

document.querySelector('#start')!.addEventListener('click', async () => {
  stop = false
  document.body.dataset.stream = 'running'
  try {
    for await (const chunk of client.callStream('/ticks', params.get('count') ?? '10')) {
      const item = document.createElement('li')
      item.textContent = new TextDecoder().decode(chunk)
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
