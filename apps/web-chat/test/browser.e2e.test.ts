import { mkdirSync, readFileSync } from 'node:fs'
import { createServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { Pool } from '@srpc/client'
import { createClient } from '@srpc/contract'
import type { Context } from '@srpc/server'
import { type SelfSignedResult, selfSigned } from '@srpc/tlsutil'
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ChatContract, MAX_TEXT_LENGTH } from '../src/chat-contract'
import { type ChatServer, startChatServer } from '../src/chat-server'

// Real Chromium (Debian's, see scripts/ensure-chromium.mjs), real wss with a real certificate:
// the browser is told to accept the test certificate, which nothing else trusts.
const CHROMIUM = process.env.SRPC_CHROMIUM ?? '/usr/bin/chromium'
const SCREENSHOTS = fileURLToPath(new URL('../test-results/screenshots/', import.meta.url))
const PAGES = fileURLToPath(new URL('../dist/public/', import.meta.url))
const PUBLIC = fileURLToPath(new URL('../public/', import.meta.url))

let tls: SelfSignedResult
let browser: Browser
const contexts: BrowserContext[] = []
const chats: ChatServer[] = []
const pools: Pool[] = []
const extraServers: HttpsServer[] = []

beforeAll(async () => {
  tls = await selfSigned(['127.0.0.1', 'localhost'])
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--ignore-certificate-errors'],
  })
}, 30_000)

afterAll(async () => {
  await browser?.close()
})

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((c) => c.close()))
  await Promise.all(pools.splice(0).map((p) => p.destroy()))
  await Promise.all(chats.splice(0).map((c) => c.server.destroy()))
  for (const s of extraServers.splice(0)) {
    s.closeAllConnections()
    await new Promise((resolve) => s.close(resolve))
  }
})

async function chatServer(options: { webAddress?: string; onTick?: (ctx: Context) => void } = {}) {
  const chat = await startChatServer({
    tls: tls.serverOptions,
    webAddress: options.webAddress ?? '127.0.0.1:0',
    tlsAddress: '127.0.0.1:0',
    onTick: options.onTick,
  })
  chats.push(chat)
  return chat
}

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 640, height: 480 } })
  contexts.push(context)
  const page = await context.newPage()
  page.on('pageerror', (err) => console.error(`page error: ${err.message}`))
  return page
}

/** The room messages a page rendered, as `seq|text`. */
function rendered(page: Page): Promise<string[]> {
  return page.$$eval('#messages li', (items) =>
    items.map((li) => `${(li as HTMLElement).dataset.seq}|${li.textContent}`),
  )
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text)
  await page.press('#text', 'Enter')
}

describe('the chat room in a real browser', () => {
  it('two pages and one Node client in the same room see every message in the same order', async () => {
    const chat = await chatServer()
    const alice = await newPage()
    const bob = await newPage()
    await alice.goto(`${chat.pageUrl}?name=alice`)
    await bob.goto(`${chat.pageUrl}?name=bob`)
    await alice.waitForSelector('body[data-state=joined]')
    await bob.waitForSelector('body[data-state=joined]')

    const pool = new Pool({ address: `127.0.0.1:${chat.tlsPort}`, tls: tls.clientOptions })
    pools.push(pool)
    // The Node member speaks the same contract through the Pool.
    const carol = await createClient(pool, ChatContract).join({ metadata: { name: 'carol' } })
    const carolSaw: string[] = []
    const reading = (async () => {
      for await (const { seq, from, text } of carol) {
        carolSaw.push(`${seq}|${from === 'room' ? '' : `${from}: `}${text}`)
      }
    })()
    await expect.poll(() => chat.room.size, { timeout: 5000 }).toBe(3)

    const ROUNDS = 6
    for (let i = 0; i < ROUNDS; i++) {
      await say(alice, `a${i}`)
      await carol.send({ text: `c${i}` })
      await say(bob, `b${i}`)
    }
    const total = ROUNDS * 3
    const chatLines = (lines: string[]) => lines.filter((line) => /\|(alice|bob|carol): /.test(line))
    await expect.poll(async () => chatLines(await rendered(alice)).length, { timeout: 10_000 }).toBe(total)
    await expect.poll(async () => chatLines(await rendered(bob)).length, { timeout: 10_000 }).toBe(total)
    await expect.poll(() => chatLines(carolSaw).length, { timeout: 10_000 }).toBe(total)

    const seenByAlice = chatLines(await rendered(alice))
    expect(chatLines(await rendered(bob))).toEqual(seenByAlice)
    expect(chatLines(carolSaw)).toEqual(seenByAlice)
    // Each member's own lines arrive in the order it sent them.
    for (const who of ['alice', 'bob', 'carol']) {
      const own = seenByAlice.filter((line) => line.includes(`|${who}: `)).map((line) => line.split(': ')[1])
      expect(own).toEqual(Array.from({ length: ROUNDS }, (_, i) => `${who[0]}${i}`))
    }
    // Sequence numbers strictly increase: one order for everyone.
    const seqs = seenByAlice.map((line) => Number(line.split('|')[0]))
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs)

    mkdirSync(SCREENSHOTS, { recursive: true })
    await alice.screenshot({ path: `${SCREENSHOTS}chat-room-alice.png` })
    await bob.screenshot({ path: `${SCREENSHOTS}chat-room-bob.png` })
    await carol.close()
    await reading
  })

  it("a line the room's schema refuses comes back to the page as INVALID_ARGUMENT with the issues; the page rejoins", async () => {
    const chat = await chatServer()
    const page = await newPage()
    await page.goto(`${chat.pageUrl}?name=eve`)
    await page.waitForSelector('body[data-state=joined]')
    // The input's maxlength keeps a person under the limit; a script is not kept.
    await page.$eval('#text', (input) => input.removeAttribute('maxlength'))
    await say(page, 'x'.repeat(MAX_TEXT_LENGTH + 1))
    await page.waitForSelector('body[data-refused]', { state: 'attached', timeout: 5000 })
    const refusal = JSON.parse((await page.getAttribute('body', 'data-refused')) ?? '{}')
    expect(refusal.code).toBe('INVALID_ARGUMENT')
    expect(refusal.issues).toHaveLength(1)
    expect(refusal.issues[0].path).toEqual(['text'])
    expect(refusal.issues[0].message).toMatch(/length/i)
    await page.waitForSelector('#messages li.refused')
    // Nobody saw it, and the page is back in the room.
    expect((await rendered(page)).some((line) => line.includes('xxxxxxxxxx'))).toBe(false)
    await page.waitForSelector('body[data-state=joined]', { timeout: 5000 })
    await say(page, 'short enough')
    await page.waitForSelector('#messages li:has-text("eve: short enough")', { timeout: 5000 })
  })

  it('a page survives the server restarting: it reconnects, rejoins and chats again', async () => {
    const first = await chatServer()
    const page = await newPage()
    await page.goto(`${first.pageUrl}?name=dora`)
    await page.waitForSelector('body[data-state=joined]')
    await say(page, 'before')
    await page.waitForSelector('#messages li:has-text("before")')

    await first.server.shutdown({ timeout: 200 })
    await page.waitForSelector('body:not([data-state=joined])', { timeout: 5000 })
    const second = await chatServer({ webAddress: `127.0.0.1:${first.webPort}` })
    await page.waitForSelector('body[data-state=joined]', { timeout: 10_000 })
    expect(second.room.size).toBe(1)
    await say(page, 'after')
    await page.waitForSelector('#messages li:has-text("after")', { timeout: 5000 })
  })
})

describe('streams and origins in a real browser', () => {
  it('a page consumes a server stream and renders every chunk in order', async () => {
    const chat = await chatServer()
    const page = await newPage()
    await page.goto(`${chat.pageUrl}stream.html?count=8`)
    await page.click('#start')
    await page.waitForSelector('body[data-stream=done]', { timeout: 10_000 })
    const ticks = await page.$$eval('#ticks li', (items) => items.map((li) => li.textContent))
    expect(ticks).toEqual(Array.from({ length: 8 }, (_, i) => `tick ${i + 1}`))
  })

  it("a page that stops reading a stream cancels it: the handler's ctx.signal aborts", async () => {
    let handler: Context | undefined
    const chat = await chatServer({ onTick: (ctx) => (handler = ctx) })
    const page = await newPage()
    await page.goto(`${chat.pageUrl}stream.html?count=100000`)
    await page.click('#start')
    await page.waitForSelector('#ticks li:nth-child(3)')
    expect(handler?.signal.aborted).toBe(false)
    await page.click('#stop')
    await page.waitForSelector('body[data-stream=cancelled]')
    await expect.poll(() => handler?.signal.aborted, { timeout: 5000 }).toBe(true)
    expect((handler!.signal.reason as { code?: string }).code).toBe('CANCELLED')
  })

  it('a page from a foreign origin is refused before the upgrade; the same page on the server origin is served', async () => {
    const chat = await chatServer()
    let connections = 0
    chat.server.on('connection', () => connections++)
    // The same probe page, served from another origin (another port).
    const foreign = createServer(tls.serverOptions, (req, res) => {
      const name = (req.url ?? '/').split('?')[0] === '/probe.js' ? `${PAGES}probe.js` : `${PUBLIC}probe.html`
      res.writeHead(200, { 'content-type': name.endsWith('.js') ? 'text/javascript' : 'text/html' })
      res.end(readFileSync(name))
    })
    extraServers.push(foreign)
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve))
    const foreignPort = (foreign.address() as AddressInfo).port
    const server = encodeURIComponent(chat.webSocketUrl)

    const evil = await newPage()
    await evil.goto(`https://127.0.0.1:${foreignPort}/probe.html?server=${server}`)
    await evil.waitForSelector('body[data-result]', { state: 'attached', timeout: 10_000 })
    expect(await evil.getAttribute('body', 'data-result')).toBe('error:UNAVAILABLE')
    expect(connections).toBe(0)

    const same = await newPage()
    await same.goto(`${chat.pageUrl}probe.html?server=${server}`)
    await same.waitForSelector('body[data-result]', { state: 'attached', timeout: 10_000 })
    expect(await same.getAttribute('body', 'data-result')).toBe('ok')
    expect(connections).toBe(1)
  })
})
