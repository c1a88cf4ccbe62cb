// Conversations with unread counts and paginated history, fed by real WebSocket traffic.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'

interface HistoryBody {
  messages: Array<{ mid: string; from: string; to: string; msg: string; ts: number; read: boolean }>
  nextBefore: string | null
}

t.test('conversations and history', async (t) => {
  const { url, wsUrl } = await startApp(t)
  const alice = await TestClient.bound(wsUrl, 'alice')
  const bob = await TestClient.bound(wsUrl, 'bob')
  for (let i = 1; i <= 5; i++) await alice.request({ type: 'send', touid: 'bob', msg: `a${i}` })
  await bob.request({ type: 'send', touid: 'alice', msg: 'b1' })
  await alice.request({ type: 'send', touid: 'carol', msg: 'c1' })

  const convs = (await (await fetch(`${url}/users/bob/conversations`)).json()) as {
    conversations: Array<{ peer: string; unread: number; lastMessage: Record<string, unknown> }>
  }
  t.same(convs.conversations.map((c) => c.peer), ['alice'])
  t.match(convs.conversations[0], { peer: 'alice', unread: 5, lastMessage: { from: 'bob', to: 'alice', msg: 'b1' } })

  const aliceConvs = (await (await fetch(`${url}/users/alice/conversations`)).json()) as {
    conversations: Array<{ peer: string; unread: number }>
  }
  t.same(aliceConvs.conversations.map((c) => [c.peer, c.unread]), [['carol', 0], ['bob', 1]], 'most recent first')

  const page1 = (await (await fetch(`${url}/users/bob/conversations/alice/messages?limit=4`)).json()) as HistoryBody
  t.same(page1.messages.map((m) => m.msg), ['b1', 'a5', 'a4', 'a3'], 'newest first')
  t.match(page1.messages[1], { from: 'alice', to: 'bob', read: false, mid: /^\d+$/, ts: Number })
  t.equal(page1.nextBefore, page1.messages[3]!.mid)
  const page2 = (await (await fetch(`${url}/users/bob/conversations/alice/messages?limit=4&before=${page1.nextBefore}`)).json()) as HistoryBody
  t.same(page2.messages.map((m) => m.msg), ['a2', 'a1'])
  t.equal(page2.nextBefore, null)

  await bob.request({ type: 'join', touid: 'alice' })
  const afterJoin = (await (await fetch(`${url}/users/bob/conversations`)).json()) as { conversations: Array<{ unread: number }> }
  t.equal(afterJoin.conversations[0]!.unread, 0, 'join clears the unread count')
  const readPage = (await (await fetch(`${url}/users/bob/conversations/alice/messages`)).json()) as HistoryBody
  t.ok(readPage.messages.filter((m) => m.to === 'bob').every((m) => m.read))
  t.equal(readPage.messages.length, 6, 'default limit covers the whole short history')

  const blank = (await (await fetch(`${url}/users/bob/conversations/alice/messages?before=&limit=`)).json()) as HistoryBody
  t.same(
    blank.messages.map((m) => m.mid),
    readPage.messages.map((m) => m.mid),
    'empty before and limit count as absent: the newest page at the default size',
  )
  for (const limit of ['0', '-Infinity', 'Infinity', '1e400']) {
    t.equal((await fetch(`${url}/users/bob/conversations/alice/messages?limit=${limit}`)).status, 400, `limit=${limit}`)
  }
  t.equal((await fetch(`${url}/users/bob/conversations/alice/messages?before=abc`)).status, 400)
  const capped = (await (await fetch(`${url}/users/bob/conversations/alice/messages?limit=100000`)).json()) as HistoryBody
  t.equal(capped.messages.length, 6, 'a large limit is capped, not refused')
  const longest = 'u'.repeat(128)
  t.equal((await fetch(`${url}/users/${longest}/conversations/${longest}/messages`)).status, 200, 'uids of 128 characters fit in paths')
  t.equal((await fetch(`${url}/users/${longest}u/conversations`)).status, 400, 'longer ones fail the schema')
  const empty = (await (await fetch(`${url}/users/nobody/conversations`)).json()) as { conversations: unknown[] }
  t.same(empty.conversations, [])
  await alice.close()
  await bob.close()
})
