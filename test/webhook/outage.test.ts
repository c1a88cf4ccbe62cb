// A webhook receiver that is down costs the server neither memory nor its chat path: the
// events wait in the outbox on disk (SQLite), at most WEBHOOK_CONCURRENCY of them in memory at
// once, while a sender stores 3000 messages to offline users and a bystander pair keeps its
// round trips. The server process's RSS is sampled from /proc. Then the receiver comes back
// on the same port and every event arrives, with its one id; the outbox empties.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { eventually, within } from '../helpers/eventually.js'
import { bystanderWhile } from '../helpers/bystander.js'
import { rssMB, sampleRss } from '../helpers/rss.js'
import { startServer, type ServerProcess } from '../helpers/server-process.js'
import { TestClient } from '../helpers/ws-client.js'
import { freshSecret, webhooks } from './admin.js'
import { idsByMid, Receiver } from './process-receiver.js'

t.setTimeout(300_000)

const MB = 1 << 20
const MESSAGES = 3000
/** 4000 characters (MAX_MESSAGE_LENGTH is 4096): the 3000 messages hold 12 MB of text. */
const MESSAGE = 'm'.repeat(4000)
const SENDERS = 10
/** WEBHOOK_CONCURRENCY, the default. */
const CONCURRENCY = 8
/** The receiver stays down until this many rounds of tries were refused. */
const REFUSED_ROUNDS = 4
const BATCH = 50
/**
 * RSS growth allowed while the receiver is down and the 3000 messages are stored. What the
 * chat path itself costs: SQLite's page cache fills with the pages written (cache_size =
 * -32768: up to 32 MB; the database grows by the 12 MB of text, plus rows and indexes, ~16 MB)
 * and the heap keeps the parsed frames' garbage until a collection (16 MB of slack). The same
 * run without WEBHOOK_URL grew 18 to 24 MB. The webhook itself may add WEBHOOK_CONCURRENCY (8)
 * events, 32 KB; an outbox kept in memory would add the 3000 events' 12 MB of text, and more.
 * 8 MB on top, for the noise of RSS between runs.
 */
const RSS_GROWTH_LIMIT_MB = 16 + 16 + 8
/** A sanity bound on the bystander's round trip, not a latency target. */
const ROUND_TRIP_SANITY_MS = 2000

/** Ten senders store `MESSAGES` messages to offline users off0..off49; resolves with the mids. */
async function sendAll(wsUrl: string): Promise<string[]> {
  const senders = await Promise.all(Array.from({ length: SENDERS }, (_, i) => TestClient.bound(wsUrl, `sender${i}`)))
  const mids: string[] = []
  await Promise.all(
    senders.map(async (sender, s) => {
      for (let sent = 0; sent < MESSAGES / SENDERS; sent += BATCH) {
        const acks = await Promise.all(
          Array.from({ length: BATCH }, (_, i) => sender.request({ type: 'send', touid: `off${(s * 7 + sent + i) % 50}`, msg: MESSAGE })),
        )
        for (const ack of acks) {
          if (ack.code !== 204) throw new Error(`not acked: ${JSON.stringify(ack)}`)
          mids.push(ack.mid!)
        }
      }
    }),
  )
  await Promise.all(senders.map((sender) => sender.close()))
  return mids
}

/** A counter of this node's /metrics. */
async function counter(server: ServerProcess, name: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text()
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)
  return match === null ? NaN : Number(match[1])
}

t.test('receiver down: events wait on disk, memory stays bounded, chat goes on; back up: every event arrives', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'duet-webhook-outage-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  // Down from the start: its port refuses connections.
  const receiver = await Receiver.closed(freshSecret())
  t.teardown(() => receiver.close())
  const server = await startServer(t, {
    STORE_URL: `sqlite:${join(dir, 'duet.db')}`,
    WEBHOOK_URL: receiver.url,
    WEBHOOK_SECRET: receiver.secret,
    // Every event must survive the outage's tries; the backoff keeps them few.
    WEBHOOK_MAX_ATTEMPTS: '100',
    WEBHOOK_CONCURRENCY: String(CONCURRENCY),
    RATE_LIMIT: '0',
  })
  const pid = server.child.pid!

  const rssBefore = rssMB(pid)
  const rss = sampleRss(t, pid)
  const outageStarted = performance.now()
  // The outage: the sender's 3000 messages, then the server's tries until a few rounds were
  // refused (each round of WEBHOOK_CONCURRENCY refusals pauses the claims for ~1 s, and the
  // events tried come due again after growing gaps). The bystander runs all along.
  const sending = sendAll(server.wsUrl)
  const outage = sending.then(() =>
    eventually(async () => (await counter(server, 'duet_webhook_retries_total')) >= REFUSED_ROUNDS * CONCURRENCY, 'rounds of refused tries', 30_000),
  )
  const bystander = await bystanderWhile(server.wsUrl, outage)
  const mids = await sending
  await outage
  const peak = rss.stop()
  const rssAfter = rssMB(pid)
  const growth = peak - rssBefore
  const downMs = performance.now() - outageStarted
  t.comment(
    `receiver down ${(downMs / 1000).toFixed(1)} s: RSS before ${rssBefore.toFixed(1)} MB, peak ${peak.toFixed(1)} MB, after ${rssAfter.toFixed(1)} MB; ` +
      `growth ${growth.toFixed(1)} MB while ${MESSAGES} messages (${((MESSAGES * MESSAGE.length) / MB).toFixed(1)} MB of text) were stored`,
  )
  t.comment(`bystander: ${bystander.trips} round trips meanwhile, the slowest ${bystander.slowest.toFixed(1)} ms`)
  t.equal(new Set(mids).size, MESSAGES, `${MESSAGES} messages acked`)
  t.ok(growth < RSS_GROWTH_LIMIT_MB, `RSS growth ${growth.toFixed(1)} MB stays under ${RSS_GROWTH_LIMIT_MB} MB`)
  t.ok(bystander.trips > 0, 'the bystander made round trips while the receiver was down')
  t.ok(bystander.slowest < ROUND_TRIP_SANITY_MS, `the bystander's slowest round trip (${bystander.slowest.toFixed(1)} ms) is under ${ROUND_TRIP_SANITY_MS} ms`)

  const down = await webhooks(server.url)
  t.same(down, { pending: MESSAGES, failed: [], nextBefore: null }, 'every event waits in the outbox, none failed')
  t.equal(receiver.arrivals.length, 0, 'nothing arrived while the receiver was down')
  const triesWhileDown = await counter(server, 'duet_webhook_retries_total')
  t.comment(`tries refused while down: ${triesWhileDown} in ${(downMs / 1000).toFixed(1)} s (a pause after each round of WEBHOOK_CONCURRENCY)`)

  const drainRss = sampleRss(t, pid)
  await receiver.open()
  const reopened = performance.now()
  await within(
    receiver.waitFor(() => new Set(receiver.arrivals.map((arrival) => arrival.event.message.mid)).size >= MESSAGES),
    180_000,
    'an event for every message once the receiver is back',
  )
  const drainMs = performance.now() - reopened
  await eventually(async () => (await webhooks(server.url)).pending === 0, 'the outbox empty', 20_000)
  t.same(await webhooks(server.url), { pending: 0, failed: [], nextBefore: null }, 'GET /admin/webhooks: nothing pending, nothing failed')

  const byMid = idsByMid(receiver.arrivals)
  t.same([...byMid.keys()].sort(), [...mids].sort(), 'one event for each message: none missing, none extra')
  t.ok(
    [...byMid.values()].every((ids) => new Set(ids).size === 1),
    'each message announced with one Duet-Event-Id',
  )
  t.ok(
    receiver.arrivals.every((arrival) => arrival.event.id === arrival.id && receiver.signed(arrival)),
    'every request signed, its body carrying its header id',
  )
  t.ok(
    receiver.arrivals.every((arrival) => arrival.event.message.msg === MESSAGE),
    'the text of each message in its event',
  )
  const drainPeak = drainRss.stop()
  t.comment(
    `receiver back: all ${MESSAGES} events in ${(drainMs / 1000).toFixed(1)} s (${receiver.arrivals.length} requests); ` +
      `RSS peak while they went ${drainPeak.toFixed(1)} MB, at the end ${rssMB(pid).toFixed(1)} MB`,
  )
})
