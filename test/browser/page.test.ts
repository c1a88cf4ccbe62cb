// The demo page as a new user finds it, in Chromium: a long uid at 1200 px and 390 px, a send
// that fails (why, retry or edit, delete, its place in the thread), a banner that closes and
// covers nothing, the uids "." and "..", a tab replaced by a newer one, and a reconnect after a
// server restart.
// None of this needs the opt-in features of issue 17 (those are in features.test.ts).
import type { FastifyInstance } from 'fastify'
import type { Page } from 'playwright-core'
import t from 'tap'
import { build } from '../../app.js'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'
import { launch, message, problems, screenshot, send, signIn, startConversation, VIEWPORT } from './chromium.js'
import { freePort } from '../helpers/free-port.js'

const LONG_UID = 'alexander.hamilton@example.com'
const LONG_PEER = 'elizabeth.schuyler.hamilton@example.com'

interface Teardown {
  teardown(fn: () => unknown): void
}

/** Fails unless a click on `selector` would land on it: visible, enabled, not covered. */
async function clickable(page: Page, selector: string): Promise<boolean> {
  try {
    await page.locator(selector).click({ trial: true, timeout: 2000 })
    return true
  } catch {
    return false
  }
}

/** Do two elements' boxes overlap on screen? */
async function overlap(page: Page, a: string, b: string): Promise<boolean> {
  const [boxA, boxB] = await Promise.all([page.locator(a).boundingBox(), page.locator(b).boundingBox()])
  if (boxA === null || boxB === null) return false
  return boxA.x < boxB.x + boxB.width && boxB.x < boxA.x + boxA.width && boxA.y < boxB.y + boxB.height && boxB.y < boxA.y + boxA.height
}

t.test('a long uid fits at 1200 px and at 390 px: no sideways scroll, every control reachable', async (t) => {
  const { url, wsUrl } = await startApp(t)
  const browser = await launch(t)
  const peer = await TestClient.bound(wsUrl, LONG_PEER)
  await peer.request({ type: 'send', touid: LONG_UID, msg: 'Hello from a very long uid indeed' })
  for (const viewport of [{ width: 1200, height: 720 }, { width: 390, height: 800 }]) {
    const context = await browser.newContext({ viewport })
    const page = await signIn(context, url, LONG_UID)
    await page.click(`#conversations li[data-peer="${LONG_PEER}"] button`)
    await message(page, 'Hello from a very long uid').waitFor()
    await page.fill('#new-peer', 'x'.repeat(60))
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
    t.equal(overflow, 0, `no horizontal overflow at ${viewport.width} px`)
    for (const selector of ['#logout', '#new-form button[type=submit]', '#new-peer', '#text', '#close-thread']) {
      t.ok(await clickable(page, selector), `${selector} can be clicked at ${viewport.width} px`)
      const box = await page.locator(selector).boundingBox()
      t.ok(box !== null && box.x >= 0 && box.x + box.width <= viewport.width, `${selector} is inside the viewport at ${viewport.width} px`)
    }
    t.equal(await page.locator('#me').getAttribute('title'), LONG_UID, 'the whole uid on hover')
    await screenshot(page, `long-uid-${viewport.width}`)
    await page.click('#logout')
    await page.locator('#login').waitFor()
    await context.close()
  }
  await peer.close()
  t.same(problems.splice(0), [], 'no page errors')
})

t.test('the composer knows the limit the server announces, before any send', async (t) => {
  const { url } = await startApp(t, { maxMessageLength: 10 })
  const context = await (await launch(t)).newContext({ viewport: VIEWPORT })
  const alice = await signIn(context, url, 'alice')
  await startConversation(alice, 'bob')
  await alice.fill('#text', 'twelve chars')
  await alice.locator('#count', { hasText: '12 / 10' }).waitFor()
  t.ok(await alice.locator('#send').isDisabled(), 'Send is off while the text is too long')
  t.equal(await alice.locator('#messages li.failed').count(), 0, 'nothing had to fail first')
  t.same(problems.splice(0), [], 'no page errors')
})

t.test('a failed send says why, offers edit or retry and delete, and keeps its place', async (t) => {
  const { app, url, wsUrl } = await startApp(t, { maxMessageLength: 10 })
  const bob = await TestClient.bound(wsUrl, 'bob')
  const context = await (await launch(t)).newContext({ viewport: VIEWPORT })
  // As a server that does not announce its limit in the 201: the page learns it from a 413.
  await context.routeWebSocket(/\/ws$/, (ws) => {
    const server = ws.connectToServer()
    ws.onMessage((data) => server.send(data))
    server.onMessage((data) => {
      const frame = JSON.parse(String(data)) as Record<string, unknown>
      delete frame.maxMessageLength
      ws.send(JSON.stringify(frame))
    })
  })
  const alice = await signIn(context, url, 'alice')
  await startConversation(alice, 'bob')
  await send(alice, 'short')
  const preview = alice.locator('#conversations li[data-peer="bob"] .preview')
  await preview.filter({ hasText: 'you: short' }).waitFor()

  // Longer than the server's limit, which the page does not know yet: the 413 says why, and teaches it.
  await alice.fill('#text', 'far too long for ten')
  await alice.press('#text', 'Enter')
  const failed = alice.locator('#messages li.failed')
  await failed.locator('.reason', { hasText: 'Not sent: too long: at most 10 characters' }).waitFor()
  t.same(await failed.locator('button').allTextContents(), ['Edit', 'Delete'], 'no retry for a text the server refuses as such')
  t.equal(await preview.textContent(), 'you: short', 'the list does not show an unsent text as sent')

  // A message that comes later goes below it: the failed one keeps its place.
  await bob.request({ type: 'send', touid: 'alice', msg: 'later' })
  await message(alice, 'later').waitFor()
  t.same(await alice.locator('#messages li .text').allTextContents(), ['short', 'far too long for ten', 'later'])

  // The composer now knows the limit: it counts, and will not send an over-long text.
  await alice.fill('#text', 'twelve chars')
  await alice.locator('#count', { hasText: '12 / 10' }).waitFor()
  t.ok(await alice.locator('#send').isDisabled(), 'Send is off while the text is too long')
  await screenshot(alice, 'failed-too-long')

  // Edit puts the text back in the composer; Delete drops the bubble.
  await failed.locator('button', { hasText: 'Edit' }).click()
  t.equal(await alice.inputValue('#text'), 'far too long for ten')
  t.equal(await failed.count(), 0)
  await alice.fill('#text', '')

  // A store failure (500) can be retried, and the retry is stored.
  const append = app.store.append.bind(app.store)
  let failOnce = true
  app.store.append = async (m) => {
    if (failOnce) {
      failOnce = false
      throw new Error('disk unavailable')
    }
    return append(m)
  }
  await alice.fill('#text', 'retry me')
  await alice.press('#text', 'Enter')
  await failed.locator('.reason', { hasText: 'Not sent: the server could not store it' }).waitFor()
  t.same(await failed.locator('button').allTextContents(), ['Retry', 'Delete'])
  await screenshot(alice, 'failed-retry')
  await failed.locator('button', { hasText: 'Retry' }).click()
  await alice.locator('#messages li.mine.sent .text', { hasText: 'retry me' }).waitFor()
  t.equal(await failed.count(), 0, 'the retried message is no longer failed')
  const got = await bob.next((f) => f.code === 200 && f.msg === 'retry me')
  t.equal(got.uid, 'alice', 'and bob has it')

  // Delete: another failure, dropped.
  await alice.fill('#text', 'x'.repeat(10) + 'é')
  t.ok(await alice.locator('#send').isDisabled(), '11 characters: not sent')
  await alice.fill('#text', '🙂'.repeat(10))
  t.notOk(await alice.locator('#send').isDisabled(), 'ten emoji are ten characters, as the server counts')
  failOnce = true
  await alice.press('#text', 'Enter')
  await failed.waitFor()
  await failed.locator('button', { hasText: 'Delete' }).click()
  await failed.waitFor({ state: 'detached' })
  await bob.close()
  t.same(problems.splice(0), [], 'no page errors')
})

t.test('a banner closes, and never covers the composer', async (t) => {
  const { url } = await startApp(t)
  const context = await (await launch(t)).newContext({ viewport: { width: 390, height: 700 } })
  const alice = await signIn(context, url, 'alice')
  await startConversation(alice, 'bob')
  await alice.fill('#new-peer', 'alice')
  await alice.press('#new-peer', 'Enter')
  const banner = alice.locator('#banner')
  await banner.filter({ hasText: 'That is you: pick another uid.' }).waitFor()
  t.notOk(await overlap(alice, '#banner', '#composer'), 'the composer is not covered')
  t.ok(await clickable(alice, '#text'), 'and can be used while the banner shows')
  await screenshot(alice, 'banner')
  await alice.click('#banner-close')
  await banner.waitFor({ state: 'hidden' })
  t.same(problems.splice(0), [], 'no page errors')
})

t.test('the uids "." and "..", which no browser can put in a URL path, get a banner that says so', async (t) => {
  const { url } = await startApp(t)
  const context = await (await launch(t)).newContext()
  for (const uid of ['.', '..']) {
    const page = await signIn(context, url, uid)
    await page.locator('#banner', { hasText: `the uid "${uid}" cannot be written in a browser's URL path` }).waitFor()
    await page.close()
  }
  t.same(problems.splice(0), [], 'no page errors')
})

t.test('a tab replaced by a newer one of the same uid stops sending, and can take the uid back', async (t) => {
  const { url } = await startApp(t)
  const context = await (await launch(t)).newContext({ viewport: VIEWPORT })
  const first = await signIn(context, url, 'alice')
  await startConversation(first, 'bob')
  const second = await signIn(context, url, 'alice')
  await first.locator('#banner', { hasText: 'opened in another tab' }).waitFor()
  await first.locator('#text:disabled').waitFor()
  t.ok(await first.locator('#send').isDisabled(), 'Send is off')
  t.equal(await first.locator('#status').textContent(), 'open in another tab')
  await screenshot(first, 'replaced')

  // "Use it here" takes it back: this tab works again, and the other one is the replaced one.
  await first.click('#banner-action')
  await first.locator('#status.bound').waitFor()
  await first.locator('#text:enabled').waitFor()
  await second.locator('#banner', { hasText: 'opened in another tab' }).waitFor()
  await send(first, 'back here')
  t.same(problems.splice(0), [], 'no page errors')
})

async function serveOn(t: Teardown, port: number): Promise<FastifyInstance> {
  const app = await build({ env: {}, config: { storeUrl: 'memory:', host: '127.0.0.1', port }, logger: false })
  await app.listen({ host: '127.0.0.1', port })
  t.teardown(() => app.close())
  return app
}

t.test('while the server is down: peers grey, a "Retry now" button, and back at once when asked', async (t) => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const first = await serveOn(t, port)
  const context = await (await launch(t)).newContext({ viewport: VIEWPORT })
  const alice = await signIn(context, url, 'alice')
  const bob = await TestClient.bound(`ws://127.0.0.1:${port}/ws`, 'bob')
  await bob.request({ type: 'send', touid: 'alice', msg: 'hi' })
  await alice.locator('#conversations li[data-peer="bob"] .dot.online').waitFor()
  await alice.click('#conversations li[data-peer="bob"] button')
  await message(alice, 'hi').waitFor()

  await first.close()
  await alice.locator('#retry').waitFor()
  await alice.locator('#status.reconnecting').waitFor()
  t.equal(await alice.locator('#conversations .dot.online').count(), 0, 'nobody is shown online while the page is disconnected')
  await screenshot(alice, 'reconnecting')

  await serveOn(t, port)
  // The page may already have come back by itself; if not, the button brings it back now.
  await alice.evaluate(() => document.getElementById('retry')?.click())
  await alice.locator('#status.bound').waitFor({ timeout: 3000 })
  await alice.locator('#retry').waitFor({ state: 'hidden' })
  await send(alice, 'after the restart')

  // The browser's "online" event is a retry too (here a no-op: the page is bound).
  await alice.evaluate(() => window.dispatchEvent(new Event('online')))
  t.equal(await alice.locator('#status').textContent(), 'online')
  await bob.close().catch(() => undefined)
  // Chromium reports each failed connection attempt on the console, a WebSocket's or a list
  // refresh's that raced the shutdown (refused, or the 503 of a server closing): expected
  // while the server was down. Page errors (exceptions) would still show here.
  t.same(
    problems.splice(0).filter((p) => !/WebSocket connection to .* failed|Failed to load resource: (net::ERR_CONNECTION_REFUSED|the server responded with a status of 503)/.test(p)),
    [],
    'no other page errors',
  )
})
