// The page with the opt-in features of issue 17, in Chromium: ticks under your own messages
// (one delivered, two read), "typing…" in the header, live online dots without polling, and
// two tabs of the same user (MULTI_DEVICE=true) each showing what the other sent. The server
// side lands separately: until its 201 answers `features`, these tests skip and say so.
import type { Page } from 'playwright-core'
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'
import { launch, message, problems, screenshot, send, signIn, startConversation, VIEWPORT } from './chromium.js'

const SKIP = 'the server does not answer `features` in its 201 yet (issue 17, server side)'

/** Does this server accept the features? Asked the way the page asks. */
async function serverHasFeatures(wsUrl: string): Promise<boolean> {
  const probe = await TestClient.connect(wsUrl)
  probe.send({ type: 'bind', uid: 'feature-probe', features: ['receipts', 'typing', 'presence', 'carbons'] })
  const reply = await probe.next()
  await probe.close()
  return Array.isArray(reply.features) && reply.features.length === 4
}

const ticks = (page: Page, text: string) => page.locator('#messages li.mine', { hasText: text }).locator('.ticks')

t.test('ticks, typing and live dots between two users', async (t) => {
  const { url, wsUrl } = await startApp(t)
  if (!(await serverHasFeatures(wsUrl))) return t.plan(0, SKIP)
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
  if (!(await serverHasFeatures(wsUrl))) return t.plan(0, SKIP)
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
