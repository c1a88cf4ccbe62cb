// The page with the opt-in features of issue 17, in Chromium: ticks under your own messages
// (one delivered, two read), "typing…" in the header, live online dots without polling, and
// two tabs of the same user (MULTI_DEVICE=true) each showing what the other sent, against the
// real server. The last test plays the server's side of the features itself, in Chromium's
// WebSocket route (real server underneath for everything else), to check the page's half
// exactly: marks going down, typing throttled, presence flapping.
import type { Page, WebSocketRoute } from 'playwright-core'
import t from 'tap'
import { eventually } from '../helpers/eventually.js'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'
import { badge, launch, message, problems, screenshot, send, signIn, startConversation, VIEWPORT } from './chromium.js'

/** Does this server accept the features? Asked the way the page asks. */
async function serverHasFeatures(wsUrl: string): Promise<boolean> {
  const probe = await TestClient.connect(wsUrl)
  probe.send({ type: 'bind', uid: 'feature-probe', features: ['receipts', 'typing', 'presence', 'carbons'] })
  const reply = await probe.next()
  await probe.close()
  // Any one of them tells: a server with signals accepts every known name.
  return Array.isArray(reply.features) && reply.features.includes('receipts')
}

const ticks = (page: Page, text: string) => page.locator('#messages li.mine', { hasText: text }).locator('.ticks')

t.test('ticks, typing and live dots between two users', async (t) => {
  const { url, wsUrl } = await startApp(t)
  t.ok(await serverHasFeatures(wsUrl), 'the server accepts the features')
  const context = await (await launch(t)).newContext({ viewport: VIEWPORT })
  const alice = await signIn(context, url, 'alice')
  const conversationsRead: string[] = []
  alice.on('request', (request) => {
    if (/\/users\/alice\/conversations\?/.test(request.url())) conversationsRead.push(request.url())
  })
  await startConversation(alice, 'bob')
  t.equal(await alice.locator('#peer-dot.online').count(), 0, 'bob is offline')

  // bob comes online: alice's dot turns green from a presence event.
  const bob = await signIn(context, url, 'bob')
  await alice.locator('#peer-dot.online').waitFor()
  await alice.locator('#conversations li[data-peer="bob"] .dot.online').waitFor()

  // Delivered to bob's tab (one tick), then read when he opens the conversation (two).
  await send(alice, 'Hello Bob!')
  await ticks(alice, 'Hello Bob!').filter({ hasText: /^✓$/ }).waitFor()
  t.equal(await ticks(alice, 'Hello Bob!').getAttribute('aria-label'), 'delivered')
  await bob.click('#conversations li[data-peer="alice"] button')
  await message(bob, 'Hello Bob!').waitFor()
  await ticks(alice, 'Hello Bob!').filter({ hasText: '✓✓' }).waitFor()
  t.equal(await ticks(alice, 'Hello Bob!').getAttribute('aria-label'), 'read')

  // bob types: "typing…" in alice's header, gone with his message.
  await bob.locator('#text').pressSequentially('Hi Al')
  await alice.locator('#peer-typing').waitFor()
  await screenshot(alice, 'features-typing')
  await bob.fill('#text', 'Hi Alice')
  await bob.press('#text', 'Enter')
  await message(alice, 'Hi Alice').waitFor()
  await alice.locator('#peer-typing').waitFor({ state: 'hidden' })

  // bob leaves: his dot greys from the presence event, well before any poll could have.
  await bob.click('#logout')
  await alice.locator('#peer-dot:not(.online)').waitFor({ timeout: 3000 })
  await screenshot(alice, 'features-offline')
  t.ok(
    conversationsRead.length <= 3,
    `the list is read after traffic, not polled (${conversationsRead.length} reads)`,
  )
  t.same(problems.splice(0), [], 'no page errors')
})

t.test('two tabs of the same user (MULTI_DEVICE=true): each shows what the other sent, as its own', async (t) => {
  const { url, wsUrl } = await startApp(t, { multiDevice: true })
  t.ok(await serverHasFeatures(wsUrl), 'the server accepts the features')
  const context = await (await launch(t)).newContext({ viewport: VIEWPORT })
  const laptop = await signIn(context, url, 'alice')
  const phone = await signIn(context, url, 'alice')
  await startConversation(laptop, 'bob')
  await startConversation(phone, 'bob')
  await send(laptop, 'from the laptop')
  await phone.locator('#messages li.mine .text', { hasText: 'from the laptop' }).waitFor()
  await send(phone, 'from the phone')
  await laptop.locator('#messages li.mine .text', { hasText: 'from the phone' }).waitFor()
  t.equal(await laptop.locator('#banner').isVisible(), false, 'neither tab was replaced')
  t.equal(await laptop.locator('#messages li').count(), 2, 'each message once')
  await screenshot(phone, 'features-two-tabs')
  t.same(problems.splice(0), [], 'no page errors')
})

t.test("the page's half of the features, against frames the test plays as the server would send them", async (t) => {
  const { url, wsUrl } = await startApp(t)
  const context = await (await launch(t)).newContext({ viewport: VIEWPORT })
  // Between the page and the real server: the 201 accepts every feature, the feature frames
  // the page sends are kept here (the server of today would answer them 404), and `page`
  // is how the test speaks as the server.
  const fromPage: Array<Record<string, unknown>> = []
  let socket: WebSocketRoute | undefined
  await context.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer()
    socket = ws
    ws.onMessage((data) => {
      const frame = JSON.parse(String(data)) as Record<string, unknown>
      if (['watch', 'unwatch', 'typing'].includes(String(frame.type))) fromPage.push(frame)
      else server.send(data)
    })
    server.onMessage((data) => {
      const frame = JSON.parse(String(data)) as Record<string, unknown>
      // The signals are the test's to play: the real server's own would race them.
      if (typeof frame.code === 'number' && frame.code >= 205 && frame.code <= 208) return
      if (frame.code === 201) frame.features = ['receipts', 'typing', 'presence', 'carbons']
      ws.send(JSON.stringify(frame))
    })
  })
  const asServer = (frame: Record<string, unknown>) => socket!.send(JSON.stringify({ error: false, msg: '', uid: '', touid: 'alice', ...frame }))
  const sentByPage = (match: (frame: Record<string, unknown>) => boolean, what: string) =>
    eventually(() => fromPage.find(match), what)

  const alice = await signIn(context, url, 'alice')
  await startConversation(alice, 'bob')
  await sentByPage((f) => f.type === 'watch' && f.touid === 'bob', 'the page watches bob')
  asServer({ type: 'presence', code: 207, msg: 'online', uid: 'bob' })
  await alice.locator('#peer-dot.online').waitFor()
  await alice.locator('#conversations li[data-peer="bob"] .dot.online').waitFor()

  // Ticks: none before a receipt, one for delivered, two for read; an older mark changes nothing.
  await send(alice, 'first')
  await send(alice, 'second')
  const [first, second] = await Promise.all(
    ['first', 'second'].map((text) => alice.locator('#messages li.mine', { hasText: text }).getAttribute('data-mid')),
  )
  t.equal(await ticks(alice, 'second').count(), 0, 'no tick before the receipt')
  asServer({ type: 'receipt', code: 205, msg: 'delivered', uid: 'bob', mid: second })
  await ticks(alice, 'second').filter({ hasText: /^✓$/ }).waitFor()
  t.equal(await ticks(alice, 'first').getAttribute('aria-label'), 'delivered', 'a mark covers every message up to it')
  asServer({ type: 'receipt', code: 205, msg: 'read', uid: 'bob', mid: first })
  await ticks(alice, 'first').filter({ hasText: '✓✓' }).waitFor()
  t.equal(await ticks(alice, 'second').textContent(), '✓', 'read up to first only')
  asServer({ type: 'receipt', code: 205, msg: 'read', uid: 'bob', mid: second })
  await ticks(alice, 'second').filter({ hasText: '✓✓' }).waitFor()
  t.equal(await ticks(alice, 'second').getAttribute('aria-label'), 'read')

  // Typing: shown in the header and the list until bob's message comes.
  asServer({ type: 'typing', code: 206, uid: 'bob' })
  await alice.locator('#peer-typing').waitFor()
  await alice.locator('#conversations li[data-peer="bob"] .preview.typing').waitFor()
  await screenshot(alice, 'features-simulated')
  // bob binds only now: online from the start, he would have had alice's messages at once, and
  // the conversation list the page re-reads 300 ms after a send would carry that delivered mark
  // (a tick before any receipt the test plays, on a slow run).
  const bob = await TestClient.bound(wsUrl, 'bob')
  await bob.request({ type: 'send', touid: 'alice', msg: 'hey' })
  await message(alice, 'hey').waitFor()
  await alice.locator('#peer-typing').waitFor({ state: 'hidden' })

  // alice types: one notice for a burst of keystrokes (the client throttles; her sends above
  // each let the next keystroke notify at once, so count from here).
  const before = fromPage.length
  await alice.locator('#text').pressSequentially('abc')
  await sentByPage((f) => fromPage.indexOf(f) >= before && f.type === 'typing' && f.touid === 'bob', 'a typing notice to bob')
  t.equal(fromPage.slice(before).filter((f) => f.type === 'typing').length, 1, 'three keystrokes, one notice')
  await alice.fill('#text', '')

  // A carbon: what alice sent to bob from another device shows as hers.
  asServer({ type: 'send', code: 200, msg: 'from my phone', uid: 'alice', touid: 'bob', mid: '999', ts: Date.now() })
  await alice.locator('#messages li.mine .text', { hasText: 'from my phone' }).waitFor()
  t.equal(await alice.locator('#conversations li[data-peer="bob"] .preview').textContent(), 'you: from my phone')
  t.equal(await badge(alice, 'bob').count(), 0, 'no unread badge for your own message')

  // bob goes offline: the dot greys at once.
  asServer({ type: 'presence', code: 207, msg: 'offline', uid: 'bob' })
  await alice.locator('#peer-dot:not(.online)').waitFor()
  await bob.close()
  t.same(problems.splice(0), [], 'no page errors')
})
