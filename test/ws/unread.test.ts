// Unread counts never drift: concurrent sends while the recipient joins and exits, then the
// count served over REST equals the unread rows of the conversation. Against every store.
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { STORE_KINDS, storeUrl } from '../helpers/stores.js'
import { TestClient } from '../helpers/ws-client.js'

const SENDS = 300

for (const kind of STORE_KINDS) {
  t.test(kind, async (t) => {
    const { url, wsUrl } = await startApp(t, { storeUrl: await storeUrl(t, kind), rateLimit: 0 })
    const senders = await Promise.all([TestClient.bound(wsUrl, 'alice'), TestClient.bound(wsUrl, 'alice2')])
    const bob = await TestClient.bound(wsUrl, 'bob')

    const acks: Array<Promise<unknown>> = []
    const toggles: Array<Promise<unknown>> = []
    for (let i = 0; i < SENDS; i++) {
      // Interleave: the peer opens and leaves the conversation while messages pour in.
      acks.push(senders[0]!.request({ type: 'send', touid: 'bob', msg: `m${i}` }))
      if (i % 7 === 0) acks.push(senders[1]!.request({ type: 'send', touid: 'bob', msg: `x${i}` }))
      if (i % 10 === 0) toggles.push(bob.request({ type: 'join', touid: 'alice' }))
      if (i % 10 === 5) toggles.push(bob.request({ type: 'exit' }))
    }
    await Promise.all([...acks, ...toggles])
    // Left the conversation: what comes now stays unread.
    await bob.request({ type: 'exit' })
    for (let i = 0; i < 5; i++) await senders[0]!.request({ type: 'send', touid: 'bob', msg: `late${i}` })

    const history = (await (await fetch(`${url}/users/bob/conversations/alice/messages?limit=200`)).json()) as {
      messages: Array<{ to: string; read: boolean }>
      nextBefore: string | null
    }
    let unreadRows = history.messages.filter((m) => m.to === 'bob' && !m.read).length
    let before = history.nextBefore
    while (before !== null) {
      const page = (await (await fetch(`${url}/users/bob/conversations/alice/messages?limit=200&before=${before}`)).json()) as typeof history
      unreadRows += page.messages.filter((m) => m.to === 'bob' && !m.read).length
      before = page.nextBefore
    }
    const convs = (await (await fetch(`${url}/users/bob/conversations`)).json()) as {
      conversations: Array<{ peer: string; unread: number }>
    }
    const fromAlice = convs.conversations.find((c) => c.peer === 'alice')!
    t.equal(fromAlice.unread, unreadRows, 'unread count equals the unread rows')
    t.ok(unreadRows >= 5, `messages after the exit are unread (${unreadRows})`)
    t.equal(convs.conversations.find((c) => c.peer === 'alice2')!.unread, Math.ceil(SENDS / 7), 'never joined: all unread')

    await bob.request({ type: 'join', touid: 'alice' })
    const after = (await (await fetch(`${url}/users/bob/conversations`)).json()) as typeof convs
    t.equal(after.conversations.find((c) => c.peer === 'alice')!.unread, 0, 'a join repairs everything')
    await Promise.all([...senders, bob].map((c) => c.close()))
  })
}
