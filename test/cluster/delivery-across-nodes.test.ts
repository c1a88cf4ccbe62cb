// Two nodes (and three) in this process, on the machine's Redis (a key prefix of their own) and
// PostgreSQL (a schema of their own): a recipient on the other node who leaves while a
// message to them is being stored still gets it at the next bind; a sender's messages keep
// their order when presence lookups (before the write, or before the push) answer out of
// order; a message stored unread while its recipient joined on the other node arrives read;
// one stored as not pushed while its recipient bound on the other node is pushed there once;
// with a third node, a recipient who moves from the second to it during the write gets the
// message there live; and a push that failed (the broker stalled) reaches its recipient, who
// stays connected, by a catch-up once the broker answers.
import t from 'tap'
import { within } from '../helpers/eventually.js'
import { answered, gateCall } from '../helpers/gate.js'
import { TestClient } from '../helpers/ws-client.js'
import { twoNodesOnRedis } from './two-nodes.js'

/** Nodes a and b, closed when `t` ends. */
const twoNodes = twoNodesOnRedis()
/** Nodes a, b and c, on a prefix and schema of their own. */
const threeNodes = twoNodesOnRedis({}, ['a', 'b', 'c'])

t.test('a recipient who leaves the other node during the write gets the message at the next bind', async (t) => {
  const [a, b] = await twoNodes(t)
  const alice = await TestClient.bound(a.wsUrl, 'alice')
  const bob = await TestClient.bound(b.wsUrl, 'bob')

  // Hold a's appends: a has looked bob up (on b) and stored the message as pushed.
  const write = gateCall(a.app.store, 'append')
  // And tell when b has marked it undelivered again, before bob binds anew.
  const setDelivered = b.app.store.setDelivered.bind(b.app.store)
  let settled!: (delivered: boolean) => void
  const markedByB = new Promise<boolean>((resolve) => (settled = resolve))
  b.app.store.setDelivered = async (uid, mid, delivered) => {
    await setDelivered(uid, mid, delivered)
    settled(delivered)
  }
  const ack = alice.request({ type: 'send', touid: 'bob', msg: 'while leaving b' })
  await write.entered
  // b forgets bob before it answers: the push a asks b for finds no one there.
  const sessions = (await (await fetch(`${b.url}/admin/sessions`)).json()) as { sessions: Array<{ id: string; uid: string }> }
  const id = sessions.sessions.find((s) => s.uid === 'bob')!.id
  t.equal((await fetch(`${b.url}/admin/sessions/${id}`, { method: 'DELETE' })).status, 204)
  t.equal((await bob.closed).code, 4001)
  write.release()
  const { mid } = await ack
  t.equal(await markedByB, false, 'b found no connection and marked the message undelivered')

  const back = await TestClient.bound(a.wsUrl, 'bob')
  t.match(await back.request({ type: 'exit' }), { code: 203 })
  t.match(back.frames, [{ code: 200, msg: 'while leaving b', mid, offline: true }], 'pushed at the bind, not lost')
  await Promise.all([back.close(), alice.close()])
})

t.test("a sender's messages are stored in the order sent when presence answers out of order", async (t) => {
  const [a, b] = await twoNodes(t)
  const carol = await TestClient.bound(a.wsUrl, 'carol')
  const dave = await TestClient.bound(b.wsUrl, 'dave')

  // a's first lookup of dave is slow (as when it must re-read the node leases first); the
  // second one answers at once.
  const presence = a.app.cluster.presence
  const slow = gateCall(presence, 'sessionsOf', 1)
  const secondAnswered = answered(presence, 'sessionsOf', 2)
  const first = carol.request({ type: 'send', touid: 'dave', msg: 'first' })
  await slow.entered
  const second = carol.request({ type: 'send', touid: 'dave', msg: 'second' })
  await secondAnswered
  slow.release()
  const [one, two] = await Promise.all([first, second])
  t.ok(BigInt(one.mid!) < BigInt(two.mid!), `mids follow the sending order (${one.mid} then ${two.mid})`)
  t.match(await dave.nextCode(200), { msg: 'first', mid: one.mid })
  t.match(await dave.nextCode(200), { msg: 'second', mid: two.mid })
  await Promise.all([carol.close(), dave.close()])
})

t.test('a recipient who moves from the other node to a third during the write gets the message live there', async (t) => {
  const [a, b, c] = await threeNodes(t)
  const alice = await TestClient.bound(a.wsUrl, 'alice')
  const old = await TestClient.bound(b.wsUrl, 'bob')
  // a has looked bob up (on b) and holds the write; bob binds on c meanwhile, which closes b's connection.
  const write = gateCall(a.app.store, 'append')
  const ack = alice.request({ type: 'send', touid: 'bob', msg: 'while moving' })
  await write.entered
  const replaced = old.nextCode(409)
  const bob = await TestClient.bound(c.wsUrl, 'bob')
  await replaced
  t.equal((await old.closed).code, 4009)
  write.release()
  const { mid } = await ack
  // b finds no bob and asks c, where bob is now: pushed live, not kept for the next bind.
  t.match(await within(bob.nextCode(200), 5000, 'the push on c'), { msg: 'while moving', mid, offline: undefined }, 'live on c')
  const conversations = (await (await fetch(`${c.url}/users/bob/conversations`)).json()) as { conversations: Array<{ peer: string; unread: number }> }
  t.match(conversations.conversations, [{ peer: 'alice', unread: 1 }])
  await bob.close()
  const again = await TestClient.bound(a.wsUrl, 'bob')
  t.match(await again.request({ type: 'exit' }), { code: 203 })
  t.same(
    again.frames.filter((f) => f.code === 200),
    [],
    'marked delivered: not pushed again at the next bind',
  )
  await Promise.all([again.close(), alice.close()])
})

t.test("a sender's messages reach another node in order when the later one's lookup answers first", async (t) => {
  const [a, b] = await twoNodes(t)
  const erin = await TestClient.bound(a.wsUrl, 'erin')

  // erin's first message is written while frank is offline as far as a looked; frank binds on
  // b during the write, so a looks him up again before pushing, and that look is slow.
  const write = gateCall(a.app.store, 'append', 1)
  const look = gateCall(a.app.cluster.presence, 'sessionsOf', 2)

  const first = erin.request({ type: 'send', touid: 'frank', msg: 'first' })
  await write.entered
  const frank = await TestClient.bound(b.wsUrl, 'frank')
  t.match(await frank.request({ type: 'exit' }), { code: 203 }, 'bound, with nothing to replay')
  write.release()
  const one = await first
  await look.entered // a looks frank up again for the first message
  const two = await erin.request({ type: 'send', touid: 'frank', msg: 'second' })
  look.release()
  t.match(await frank.nextCode(200), { msg: 'first', mid: one.mid })
  t.match(await frank.nextCode(200), { msg: 'second', mid: two.mid })
  await Promise.all([erin.close(), frank.close()])
})

t.test('a message stored unread just before its recipient joined on the other node is read on arrival', async (t) => {
  const [a, b] = await twoNodes(t)
  const gina = await TestClient.bound(a.wsUrl, 'gina')
  const hugo = await TestClient.bound(b.wsUrl, 'hugo')
  // a has looked hugo up (no conversation open) and the write waits; hugo opens gina's meanwhile.
  const write = gateCall(a.app.store, 'append', 1)
  const corrected = answered(b.app.store, 'markRead', 2) // 1 is hugo's join
  const sent = gina.request({ type: 'send', touid: 'hugo', msg: 'while joining' })
  await write.entered
  t.match(await hugo.request({ type: 'join', touid: 'gina' }), { code: 202 })
  write.release()
  const { mid } = await sent
  t.match(await hugo.nextCode(200), { msg: 'while joining', mid })
  await corrected
  const res = await fetch(`${a.url}/users/hugo/conversations`)
  const { conversations } = (await res.json()) as { conversations: Array<{ peer: string; unread: number }> }
  t.match(conversations, [{ peer: 'gina', unread: 0 }], 'read: the conversation was open when it arrived')
  await Promise.all([gina.close(), hugo.close()])
})

t.test('a recipient who binds on the other node during the write gets the message live, and not again', async (t) => {
  const [a, b] = await twoNodes(t)
  const ivan = await TestClient.bound(a.wsUrl, 'ivan')
  // a has looked jill up (bound nowhere: stored as not pushed) and the write waits.
  const write = gateCall(a.app.store, 'append', 1)
  const sent = ivan.request({ type: 'send', touid: 'jill', msg: 'during the bind' })
  await write.entered
  const jill = await TestClient.bound(b.wsUrl, 'jill')
  t.match(await jill.request({ type: 'exit' }), { code: 203 }, 'bound, with nothing to replay')
  const flagged = answered(b.app.store, 'setDelivered', 1)
  write.release()
  const { mid } = await sent
  t.match(await jill.nextCode(200), { msg: 'during the bind', mid }, 'pushed live by b')
  await flagged // b marks it delivered: the push happened there
  const again = await TestClient.bound(b.wsUrl, 'jill')
  t.match(await again.request({ type: 'exit' }), { code: 203 })
  t.same(again.frames, [], 'not pushed again at the next bind')
  await Promise.all([jill.closed, again.close(), ivan.close()])
})

t.test('a push lost to a stalled broker reaches a recipient who stays connected, by a catch-up', async (t) => {
  const [a, b] = await twoNodes(t)
  const stella = await TestClient.bound(a.wsUrl, 'stella')
  const stan = await TestClient.bound(b.wsUrl, 'stan')
  // a's first delivery to b fails as a Redis command that timed out does; later ones go.
  const broker = a.app.cluster.broker
  const publish = broker.publish.bind(broker)
  let failed = false
  broker.publish = async (node, event) => {
    if (event.kind === 'deliver' && !failed) {
      failed = true
      throw new Error('Command timed out')
    }
    return publish(node, event)
  }
  t.teardown(() => (broker.publish = publish))
  const { mid } = await stella.request({ type: 'send', touid: 'stan', msg: 'during the stall' })
  t.match(await within(stan.nextCode(200), 10_000, 'the catch-up'), { msg: 'during the stall', mid, offline: true }, 'pushed without a new bind')
  t.match(await stan.request({ type: 'exit' }), { code: 203 })
  t.same(
    stan.frames.filter((f) => f.code === 200),
    [],
    'once',
  )
  await Promise.all([stella.close(), stan.close()])
})
