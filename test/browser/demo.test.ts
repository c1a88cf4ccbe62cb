// The demo page in a real browser (Debian's Chromium through playwright-core): two pages
// as two users chat live; the unread badge appears while the conversation is closed and
// clears on join; history survives a reload and pages back; user text stays text; a long
// conversation list loads page by page.
// Screenshots go to artifacts/screenshots/ (and docs/screenshots/ with UPDATE_SCREENSHOTS=1).
// The page's fixes for new users are in page.test.ts; the opt-in features in features.test.ts.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'
import { badge, launch, message, problems, screenshot, send, signIn, VIEWPORT } from './chromium.js'

t.test('two users chat in the demo page', async (t) => {
  const { url, wsUrl } = await startApp(t)
  // Two tabs of one browser, as in the quick start: they share cookies and localStorage.
  const context = await (await launch(t)).newContext({ viewport: VIEWPORT })
  const alice = await signIn(context, url, 'alice')
  const bob = await signIn(context, url, 'bob')

  // alice starts a conversation with a uid she has never talked to.
  await alice.fill('#new-peer', 'bob')
  await alice.press('#new-peer', 'Enter')
  await alice.locator('#peer-name', { hasText: 'bob' }).waitFor()
  await send(alice, 'Hello Bob!')

  // bob has no conversation open: the message shows as unread, alice as online.
  await badge(bob, 'alice').filter({ hasText: '1' }).waitFor()
  await send(alice, '<img src=x onerror="window.pwned=1">')
  await badge(bob, 'alice').filter({ hasText: '2' }).waitFor()
  await bob.locator('#conversations li[data-peer="alice"] .dot.online').waitFor()

  // Opening it joins: the badge goes, the history is there, the server counts it read.
  await bob.click('#conversations li[data-peer="alice"] button')
  await badge(bob, 'alice').waitFor({ state: 'detached' })
  await message(bob, 'Hello Bob!').waitFor()
  const list = (await (await fetch(`${url}/users/bob/conversations`)).json()) as { conversations: Array<{ unread: number }> }
  t.equal(list.conversations[0]!.unread, 0, 'the server marked them read')

  // Text is text: the markup shows literally and nothing ran.
  await message(bob, '<img src=x').waitFor()
  t.equal(await bob.locator('#messages img').count(), 0, 'no element from user text')
  t.equal(await bob.evaluate(() => (window as { pwned?: number }).pwned), undefined, 'no script from user text')

  // Live both ways while both have the conversation open.
  await send(bob, 'Hi Alice, got it.')
  await message(alice, 'Hi Alice, got it.').waitFor()
  t.equal(await badge(alice, 'bob').count(), 0, 'no badge for the open conversation')
  await screenshot(alice, 'alice')

  // A reload keeps the conversation and its history.
  await bob.reload()
  await bob.locator('#status.bound').waitFor()
  await message(bob, 'Hello Bob!').waitFor()
  await message(bob, 'Hi Alice, got it.').waitFor()
  t.equal(await bob.locator('#messages li').count(), 3, 'each message once after the reload')

  // Scroll back: a long conversation loads its older pages on demand.
  const carol = await TestClient.bound(wsUrl, 'carol')
  for (let i = 1; i <= 45; i++) await carol.request({ type: 'send', touid: 'bob', msg: `carol ${i}` })
  await badge(bob, 'carol').filter({ hasText: '45' }).waitFor()
  await bob.locator('#conversations li[data-peer="carol"] .dot.online').waitFor()
  await screenshot(bob, 'bob')
  await bob.click('#conversations li[data-peer="carol"] button')
  await message(bob, 'carol 45').waitFor()
  t.equal(await bob.locator('#messages li').count(), 30, 'the newest page first')
  await bob.locator('#scroller').evaluate((el) => (el.scrollTop = 0))
  await message(bob, /^carol 1$/).waitFor()
  t.equal(await bob.locator('#messages li').count(), 45, 'older messages loaded on scroll')
  t.equal(await bob.locator('#older').isVisible(), false, 'no more to load')
  await carol.close()
  t.same(problems, [], 'no page errors')
})

t.test('the conversation list loads page by page, and its refresh covers every page loaded', async (t) => {
  const { app, url, wsUrl } = await startApp(t)
  // 60 partners wrote to dana (pal59 last); delivered, so her bind replays none of them.
  for (let i = 0; i < 60; i++) {
    const from = `pal${String(i).padStart(2, '0')}`
    await app.store.append({ from, to: 'dana', msg: `hello from ${from} ${'.'.repeat(300)}`, read: false, delivered: true })
  }
  const context = await (await launch(t)).newContext({ viewport: VIEWPORT })
  const dana = await signIn(context, url, 'dana')
  const items = dana.locator('#conversations li')
  await dana.locator('#more-conversations').waitFor()
  t.equal(await items.count(), 50, 'the first page')
  t.match(await items.first().locator('.preview').textContent(), /^hello from pal59 \.+…$/, 'a cut preview says so')
  await dana.click('#more-conversations')
  await dana.locator('#conversations li[data-peer="pal00"]').waitFor()
  t.equal(await items.count(), 60, 'the second page added')
  await dana.locator('#more-conversations').waitFor({ state: 'hidden' })

  // pal01 (second page) comes online without writing; pal03 writes, which brings a refresh.
  const pal01 = await TestClient.bound(wsUrl, 'pal01')
  const pal03 = await TestClient.bound(wsUrl, 'pal03')
  await pal03.request({ type: 'send', touid: 'dana', msg: 'still there?' })
  await badge(dana, 'pal03').filter({ hasText: '2' }).waitFor()
  await dana.locator('#conversations li[data-peer="pal01"] .dot.online').waitFor()
  t.equal(await items.first().getAttribute('data-peer'), 'pal03', 'the new message is on top')
  t.equal(await items.count(), 60, 'each conversation once')
  await Promise.all([pal01.close(), pal03.close()])
  t.same(problems, [], 'no page errors')
})

t.test('the page is served with a strict CSP and no admin data', async (t) => {
  const { url } = await startApp(t)
  const res = await fetch(url)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-security-policy'), /default-src 'none'; script-src 'self'/)
  const html = await res.text()
  const js = await (await fetch(`${url}/app.js`)).text()
  t.notMatch(html + js, /\/admin\//, 'the page never calls admin routes')
  t.notMatch(js, /innerHTML|insertAdjacentHTML|document\.write/, 'no HTML parsing of strings')
})
