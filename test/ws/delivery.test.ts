// Messages between users: live, offline, recovery by `since`, resend by ref, read state,
// replacement of an older connection; against every store.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { RawClient } from '../helpers/raw-ws.js'
import { STORE_KINDS, storeUrl } from '../helpers/stores.js'
import { TestClient } from '../helpers/ws-client.js'


for (const kind of STORE_KINDS) {
  t.test(kind, async (t) => {
    t.test('both online: order kept per pair', async (t) => {
      const { wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
      const alice = await TestClient.bound(wsUrl, 'alice')
      const bob = await TestClient.bound(wsUrl, 'bob')
      for (let i = 0; i < 50; i++) alice.send({ type: 'send', uid: 'alice', touid: 'bob', msg: `m${i}` })
      const received: string[] = []
      let lastMid = 0n
      for (let i = 0; i < 50; i++) {
        const frame = await bob.nextCode(200)
        received.push(frame.msg)
        t.ok(BigInt(frame.mid!) > lastMid, 'mids increase')
        lastMid = BigInt(frame.mid!)
      }
      t.same(received, Array.from({ length: 50 }, (_, i) => `m${i}`))
      await alice.close()
      await bob.close()
    })

    t.test('peer offline: messages kept and pushed after its bind, in order, marked offline', async (t) => {
      const { wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
      const alice = await TestClient.bound(wsUrl, 'alice')
      const mids: string[] = []
      for (const msg of ['one', 'two', 'three']) mids.push((await alice.request({ type: 'send', touid: 'bob', msg })).mid!)

      const bob = await TestClient.connect(wsUrl)
      bob.send({ type: 'bind', uid: 'bob' })
      const bound = await bob.next()
      t.match(bound, { code: 201, mid: mids[2] })
      for (const [i, msg] of ['one', 'two', 'three'].entries()) {
        t.match(await bob.next(), { code: 200, msg, uid: 'alice', touid: 'bob', mid: mids[i], offline: true })
      }
      await bob.close()

      // Delivered once: the next bind pushes nothing old.
      const again = await TestClient.bound(wsUrl, 'bob')
      t.match(await again.request({ type: 'send', touid: 'alice', msg: 'back' }), { code: 204 })
      t.same(again.frames, [], 'no second offline push')
      await again.close()
      await alice.close()
    })

    t.test('a reconnect the moment the backlog is in gets none of it again', async (t) => {
      const { wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
      const alice = await TestClient.bound(wsUrl, 'alice')
      for (let round = 0; round < 10; round++) {
        const mids: string[] = []
        for (let i = 0; i < 3; i++) mids.push((await alice.request({ type: 'send', touid: 'bob', msg: `r${round}` })).mid!)
        const bob = await TestClient.connect(wsUrl)
        bob.send({ type: 'bind', uid: 'bob' })
        t.match(await bob.next(), { code: 201 })
        t.same([(await bob.next()).mid, (await bob.next()).mid, (await bob.next()).mid], mids, `round ${round}: replayed`)
        // At once, while the server may still be writing the replay's delivered flags.
        const again = await TestClient.bound(wsUrl, 'bob')
        // Frames after a bind are answered once its replay is out: nothing before this reply =
        // nothing replayed.
        t.match(await again.request({ type: 'exit' }), { code: 203 })
        t.same(again.frames, [], `round ${round}: not replayed again`)
        await Promise.all([bob.close(), again.close()])
      }
      await alice.close()
    })

    t.test('a message to a connection that is closing is kept for the next bind', async (t) => {
      const { url, wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
      const alice = await TestClient.bound(wsUrl, 'alice')
      const closing = await RawClient.connect(wsUrl)
      t.teardown(() => closing.socket.destroy())
      closing.write(RawClient.text({ type: 'bind', uid: 'bob' }))
      t.match(await closing.nextJson(), { code: 201 })
      // Bob's close frame is answered, but his TCP connection stays: the server is closing it.
      closing.write(RawClient.close())
      await closing.closeFrame()
      const { sessions } = (await (await fetch(`${url}/admin/sessions`)).json()) as { sessions: Array<{ uid: string }> }
      t.ok(sessions.some((s) => s.uid === 'bob'), 'the closing connection is still bound')
      const { mid } = await alice.request({ type: 'send', touid: 'bob', msg: 'while closing' })
      const back = await TestClient.connect(wsUrl)
      back.send({ type: 'bind', uid: 'bob' })
      t.match(await back.next(), { code: 201, mid })
      // Answered once the bind's replay is out.
      t.match(await back.request({ type: 'exit' }), { code: 203 })
      t.match(back.frames, [{ code: 200, mid, offline: true }], 'pushed at the next bind, not lost')
      await back.close()
      await alice.close()
    })

    t.test('since: replays every later message, read or not; 201 carries the position', async (t) => {
      const { wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
      const alice = await TestClient.bound(wsUrl, 'alice')
      const bob = await TestClient.bound(wsUrl, 'bob')
      const first = await alice.request({ type: 'send', touid: 'bob', msg: 'first' })
      await bob.nextCode(200)
      await bob.close()
      const second = await alice.request({ type: 'send', touid: 'bob', msg: 'second' })
      const third = await alice.request({ type: 'send', touid: 'bob', msg: 'third' })

      const back = await TestClient.connect(wsUrl)
      back.send({ type: 'bind', uid: 'bob', since: first.mid })
      t.match(await back.next(), { code: 201, mid: third.mid })
      t.match(await back.next(), { code: 200, msg: 'second', mid: second.mid, offline: true })
      t.match(await back.next(), { code: 200, msg: 'third', mid: third.mid, offline: true })
      await back.close()

      const replayAll = await TestClient.connect(wsUrl)
      replayAll.send({ type: 'bind', uid: 'bob', since: '0' })
      t.match(await replayAll.next(), { code: 201, mid: third.mid })
      const msgs = [(await replayAll.next()).msg, (await replayAll.next()).msg, (await replayAll.next()).msg]
      t.same(msgs, ['first', 'second', 'third'], 'since 0 replays everything, delivered or not')
      await replayAll.close()

      const ahead = await TestClient.connect(wsUrl)
      const reply = await ahead.request({ type: 'bind', uid: 'bob', since: '999999' })
      t.match(reply, { code: 201, mid: third.mid, reset: true })
      await ahead.close()
      await alice.close()
    })

    t.test('a new user gets mid "0" and no reset', async (t) => {
      const { wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
      const c = await TestClient.connect(wsUrl)
      const reply = await c.request({ type: 'bind', uid: 'newbie', since: '0' })
      t.match(reply, { code: 201, mid: '0' })
      t.notOk(reply.reset)
      await c.close()
    })

    t.test('resend with the same ref: same mid, stored and delivered once', async (t) => {
      const { app, wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
      const alice = await TestClient.bound(wsUrl, 'alice')
      const bob = await TestClient.bound(wsUrl, 'bob')
      const acked = alice.next((f) => f.ref === 'r-1')
      alice.send({ type: 'send', touid: 'bob', msg: 'once', ref: 'r-1' })
      const first = await acked
      // Reconnect, not knowing whether it went through, and send again with the same ref.
      await alice.close()
      const alice2 = await TestClient.bound(wsUrl, 'alice')
      const repeated = alice2.next((f) => f.ref === 'r-1')
      alice2.send({ type: 'send', touid: 'bob', msg: 'once', ref: 'r-1' })
      t.match(await repeated, { code: 204, mid: first.mid })
      t.equal((await app.store.history('alice', 'bob', null, 10)).length, 1, 'stored once')
      t.match(await bob.nextCode(200), { mid: first.mid })
      t.match(await alice2.request({ type: 'send', touid: 'bob', msg: 'after' }), { code: 204 })
      t.match(await bob.nextCode(200), { msg: 'after' }, 'the duplicate was not pushed again')
      await alice2.close()
      await bob.close()
    })

    t.test('an empty ref is echoed but makes no resend: each such message is stored', async (t) => {
      const { app, wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
      const alice = await TestClient.bound(wsUrl, 'alice')
      const first = alice.next((f) => f.code === 204)
      alice.send({ type: 'send', touid: 'bob', msg: 'one', ref: '' })
      t.match(await first, { code: 204, ref: '' })
      const second = alice.next((f) => f.code === 204)
      alice.send({ type: 'send', touid: 'bob', msg: 'two', ref: '' })
      const ack = await second
      t.not(ack.mid, (await first).mid, 'a new mid')
      t.same((await app.store.history('bob', 'alice', null, 10)).map((m) => m.msg), ['two', 'one'], 'both stored')
      await alice.close()
    })

    t.test('join marks read and keeps new ones read; exit makes them unread again', async (t) => {
      const { app, wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
      const alice = await TestClient.bound(wsUrl, 'alice')
      const bob = await TestClient.bound(wsUrl, 'bob')
      await alice.request({ type: 'send', touid: 'bob', msg: 'a' })
      await alice.request({ type: 'send', touid: 'bob', msg: 'b' })
      t.equal(await app.store.unreadCount('bob', 'alice'), 2)

      t.match(await bob.request({ type: 'join', touid: 'alice' }), { code: 202, touid: 'alice' })
      t.equal(await app.store.unreadCount('bob', 'alice'), 0, 'join read them')
      await alice.request({ type: 'send', touid: 'bob', msg: 'c' })
      t.equal(await app.store.unreadCount('bob', 'alice'), 0, 'read on arrival while joined')

      t.match(await bob.request({ type: 'exit', touid: 'alice' }), { code: 203, touid: 'alice' })
      await alice.request({ type: 'send', touid: 'bob', msg: 'd' })
      t.equal(await app.store.unreadCount('bob', 'alice'), 1, 'unread again after exit')
      t.equal(await app.store.unreadCount('alice', 'bob'), 0, 'the other direction is untouched')

      // A second join replaces the first: messages from the old peer are unread again.
      await bob.request({ type: 'join', touid: 'alice' })
      await bob.request({ type: 'join', touid: 'carol' })
      await alice.request({ type: 'send', touid: 'bob', msg: 'e' })
      t.equal(await app.store.unreadCount('bob', 'alice'), 1)
      await alice.close()
      await bob.close()
    })

    t.test('a newer bind replaces the older connection with 409 then a close', async (t) => {
      const { app, wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind) })
      const alice = await TestClient.bound(wsUrl, 'alice')
      const old = await TestClient.bound(wsUrl, 'bob')
      const replaced = old.nextCode(409)
      const fresh = await TestClient.bound(wsUrl, 'bob')
      t.match(await replaced, { type: 'bind', error: true, code: 409, uid: 'bob' })
      const closed = await old.closed
      t.ok(closed.code >= 4000 && closed.code < 5000, `close code ${closed.code} in the 4000 range`)
      t.ok(closed.reason.length > 0, 'a reason is given')

      await alice.request({ type: 'send', touid: 'bob', msg: 'to the new one' })
      t.match(await fresh.nextCode(200), { msg: 'to the new one' })
      t.same(app.hub.registry.onlineUids().sort(), ['alice', 'bob'])
      t.equal(app.hub.registry.listSessions().filter((s) => s.uid === 'bob').length, 1)
      await alice.close()
      await fresh.close()
    })

    t.test('MULTI_DEVICE keeps every connection and pushes to all', async (t) => {
      const { wsUrl } = await startApp(t, { multiDevice: true, storeUrl: await storeUrl(t, kind) })
      const alice = await TestClient.bound(wsUrl, 'alice')
      const phone = await TestClient.bound(wsUrl, 'bob')
      const laptop = await TestClient.bound(wsUrl, 'bob')
      await alice.request({ type: 'send', touid: 'bob', msg: 'both' })
      t.match(await phone.nextCode(200), { msg: 'both' })
      t.match(await laptop.nextCode(200), { msg: 'both' })
      t.same(phone.frames, [], 'no 409 to the first device')
      await Promise.all([alice.close(), phone.close(), laptop.close()])
    })
  })
}
