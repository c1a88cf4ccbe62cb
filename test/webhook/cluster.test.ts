// Two nodes on one PostgreSQL schema and one Redis prefix share the webhook outbox: each claims
// due events with FOR UPDATE SKIP LOCKED and a lease, so while both live every event goes out
// exactly once, whichever node stored its message and whichever sends it. A real receiver
// (node:http) answering 200; 300 messages to offline users, half through each node.
import t from 'tap'
import { twoNodesOnRedis } from '../cluster/two-nodes.js'
import { eventually, within } from '../helpers/eventually.js'
import { adminSend, freshSecret, webhooks } from './admin.js'
import { idsByMid, Receiver } from './process-receiver.js'

t.setTimeout(120_000)

const MESSAGES = 300
/** Sends in flight at once through each node. */
const PARALLEL = 10

/** This node's delivered count, from its /metrics (duet_webhook_events_sent_total). */
async function sentBy(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const match = /^duet_webhook_events_sent_total(?:\{[^}]*\})? (\d+)/m.exec(text)
  return match === null ? NaN : Number(match[1])
}

t.test('every event of messages sent through both nodes arrives exactly once', async (t) => {
  const receiver = await Receiver.start(freshSecret())
  t.teardown(() => receiver.close())
  const [a, b] = await twoNodesOnRedis({ webhookUrl: receiver.url, webhookSecret: receiver.secret, rateLimit: 0 })(t)

  // Nodes a and b each store half: offline recipients off0..off19, a sender of each node's own.
  const sendThrough = async (url: string, from: string, count: number): Promise<string[]> => {
    const mids: string[] = []
    await Promise.all(
      Array.from({ length: PARALLEL }, async (_, lane) => {
        for (let i = lane; i < count; i += PARALLEL) mids.push(await adminSend(url, from, `off${i % 20}`, `${from} ${i}`))
      }),
    )
    return mids
  }
  const [viaA, viaB] = await Promise.all([sendThrough(a!.url, 'sender-a', MESSAGES / 2), sendThrough(b!.url, 'sender-b', MESSAGES / 2)])
  const mids = [...viaA, ...viaB]
  t.equal(new Set(mids).size, MESSAGES, `${MESSAGES} messages stored, ${viaA.length} through each node`)

  await within(
    receiver.waitFor(() => new Set(receiver.arrivals.map((arrival) => arrival.event.message.mid)).size >= MESSAGES),
    60_000,
    'an event for every message',
  )
  // Pending 0: every event settled as sent, so no try is left to come (a duplicate would come before).
  await eventually(async () => (await webhooks(a!.url)).pending === 0, 'no event pending', 20_000)
  t.same(await webhooks(b!.url), { pending: 0, failed: [], nextBefore: null }, 'both nodes see the outbox empty, nothing failed')

  const ids = receiver.arrivals.map((arrival) => arrival.id)
  const duplicates = ids.filter((id, i) => ids.indexOf(id) !== i)
  t.same(duplicates, [], 'no Duet-Event-Id arrived twice')
  t.equal(receiver.arrivals.length, MESSAGES, `${MESSAGES} requests in all`)
  const byMid = idsByMid(receiver.arrivals)
  t.same([...byMid.keys()].sort(), [...mids].sort(), 'one event for each mid, none missing, none extra')
  t.ok(
    [...byMid.values()].every((idsOfMid) => idsOfMid.length === 1),
    'each mid announced once',
  )
  t.ok(
    receiver.arrivals.every((arrival) => arrival.event.id === arrival.id && receiver.signed(arrival)),
    'every body carries its header id, every request is signed',
  )
  const fromA = receiver.arrivals.filter((arrival) => arrival.event.message.from === 'sender-a').length
  t.equal(fromA, MESSAGES / 2, "node a's messages all announced")

  const [sentA, sentB] = await Promise.all([sentBy(a!.url), sentBy(b!.url)])
  t.comment(`deliveries: node a sent ${sentA}, node b sent ${sentB}`)
  t.equal(sentA + sentB, MESSAGES, 'the nodes delivered one event per message between them')
})
