// GET /metrics: admin-protected, Prometheus text, and the counters move with real traffic.
import t from 'tap'
import { startApp } from './helpers/app.js'
import { RawClient } from './helpers/raw-ws.js'
import { TestClient } from './helpers/ws-client.js'

const ADMIN_TOKEN = 'metrics-test-admin-token'

/** The value of one sample line, e.g. `duet_frames_in_total{type="send"}`; 0 when absent. */
/** The value of one series; the `node` label every series carries is left out of `series`. */
function sample(text: string, series: string): number {
  const unlabelled = (line: string): string => line.replace(/node="[^"]*",?/, '').replace('{}', '').replace(',}', '}')
  const line = text.split('\n').map(unlabelled).find((l) => l.startsWith(`${series} `))
  return line === undefined ? 0 : Number(line.slice(series.length + 1))
}

t.test('every series names its node (NODE_ID)', async (t) => {
  const { url } = await startApp(t, { nodeId: 'node-7' })
  const text = await (await fetch(`${url}/metrics`)).text()
  t.match(text, /^duet_connections\{node="node-7"\} /m)
  t.match(text, /^duet_binds_total\{node="node-7"\} /m)
  t.match(text, /^duet_store_write_seconds_count\{node="node-7",result="ok"\} /m, 'the latency histograms')
  t.match(text, /^nodejs_eventloop_lag_seconds\{node="node-7"\} /m, 'the default metrics')
  const samples = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'))
  t.ok(samples.length > 50)
  t.same(
    samples.filter((line) => !/[{,]node="node-7"[,}]/.test(line)),
    [],
    'no sample line without it',
  )
  const other = await startApp(t, { nodeId: 'a "quoted" \\ node' })
  const escaped = await (await fetch(`${other.url}/metrics`)).text()
  t.match(escaped, /^duet_message_delivery_seconds_count\{node="a \\"quoted\\" \\\\ node"\} 0$/m, 'label values escaped')
})

t.test('GET /metrics needs the admin token', async (t) => {
  const { url } = await startApp(t, { adminToken: ADMIN_TOKEN })
  t.equal((await fetch(`${url}/metrics`)).status, 401)
  t.equal((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401)
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain/)
})

t.test('traffic shows up in the counters and histograms', async (t) => {
  const { url, wsUrl } = await startApp(t, { adminToken: ADMIN_TOKEN })
  const scrape = async (): Promise<string> =>
    (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text()

  const stray = await TestClient.connect(wsUrl)
  await stray.request({ type: 'send', touid: 'bob', msg: 'not bound yet' })
  stray.send({ type: 'x'.repeat(30) })
  await stray.nextCode(404)
  const alice = await TestClient.bound(wsUrl, 'alice')
  const bob = await TestClient.bound(wsUrl, 'bob')
  for (let i = 0; i < 3; i++) await alice.request({ type: 'send', touid: 'bob', msg: `m${i}` })
  for (let i = 0; i < 3; i++) await bob.nextCode(200)

  const text = await scrape()
  t.equal(sample(text, 'duet_connections'), 3)
  t.equal(sample(text, 'duet_online_users'), 2)
  t.equal(sample(text, 'duet_connections_opened_total'), 3)
  t.equal(sample(text, 'duet_binds_total'), 2)
  t.equal(sample(text, 'duet_frames_in_total{type="send"}'), 4)
  t.equal(sample(text, 'duet_frames_in_total{type="bind"}'), 2)
  t.equal(sample(text, 'duet_frames_in_total{type="other"}'), 1, 'a client-chosen type is folded into one label')
  t.equal(sample(text, 'duet_frames_out_total{type="send",code="204"}'), 3)
  t.equal(sample(text, 'duet_frames_out_total{type="send",code="200"}'), 3)
  t.equal(sample(text, 'duet_errors_total{code="402"}'), 1)
  t.equal(sample(text, 'duet_errors_total{code="404"}'), 1)
  t.equal(sample(text, 'duet_message_delivery_seconds_count'), 3)
  t.equal(sample(text, 'duet_store_write_seconds_count{result="ok"}'), 3)
  t.equal(sample(text, 'duet_store_write_seconds_bucket{le="+Inf",result="ok"}'), 3, 'store write histogram buckets')
  t.match(text, /^nodejs_eventloop_lag_seconds\{node="[^"]+"\} \d/m, 'event-loop lag (default metrics)')
  t.match(text, /^process_resident_memory_bytes\{node="[^"]+"\} \d/m)

  await Promise.all([stray.close(), alice.close(), bob.close()])
  await t.resolves(scrape())
})

t.test('the signals have labels of their own, not other', async (t) => {
  const { url, wsUrl } = await startApp(t, { adminToken: ADMIN_TOKEN })
  const features = ['receipts', 'typing', 'presence']
  const alice = await TestClient.bound(wsUrl, 'alice', { features })
  const bob = await TestClient.bound(wsUrl, 'bob', { features })
  t.equal((await alice.request({ type: 'watch', touid: 'bob' })).code, 207)
  alice.send({ type: 'typing', touid: 'bob' })
  await bob.nextCode(206)
  await alice.request({ type: 'send', touid: 'bob', msg: 'hi' })
  await alice.nextCode(205)
  t.equal((await alice.request({ type: 'unwatch', touid: 'bob' })).code, 208)
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text()
  for (const type of ['typing', 'watch', 'unwatch']) t.equal(sample(text, `duet_frames_in_total{type="${type}"}`), 1, `in: ${type}`)
  t.equal(sample(text, 'duet_frames_out_total{type="typing",code="206"}'), 1)
  t.equal(sample(text, 'duet_frames_out_total{type="presence",code="207"}'), 1)
  t.equal(sample(text, 'duet_frames_out_total{type="receipt",code="205"}'), 1)
  t.notMatch(text, /duet_frames_(in|out)_total\{type="other"/, 'nothing folded')
  await Promise.all([alice.close(), bob.close()])
})

t.test('two apps in one process keep separate counters', async (t) => {
  const one = await startApp(t, { adminToken: ADMIN_TOKEN })
  const two = await startApp(t, { adminToken: ADMIN_TOKEN })
  const alice = await TestClient.bound(one.wsUrl, 'alice')
  const headers = { authorization: `Bearer ${ADMIN_TOKEN}` }
  const [a, b] = await Promise.all([one, two].map(async (s) => (await fetch(`${s.url}/metrics`, { headers })).text()))
  t.equal(sample(a!, 'duet_binds_total'), 1)
  t.equal(sample(b!, 'duet_binds_total'), 0)
  await alice.close()
})

t.test('a push refused by a closing connection is not counted; its replay at the next bind is', async (t) => {
  const { url, wsUrl } = await startApp(t)
  const alice = await TestClient.bound(wsUrl, 'alice')
  const closing = await RawClient.connect(wsUrl)
  t.teardown(() => closing.socket.destroy())
  closing.write(RawClient.text({ type: 'bind', uid: 'bob' }))
  await closing.nextJson()
  closing.write(RawClient.close())
  await closing.closeFrame() // the server is closing bob's connection; it is still bound
  await alice.request({ type: 'send', touid: 'bob', msg: 'while closing' })
  const pushes = async (): Promise<number> =>
    sample(await (await fetch(`${url}/metrics`)).text(), 'duet_frames_out_total{type="send",code="200"}')
  t.equal(await pushes(), 0, 'nothing went out')
  const back = await TestClient.bound(wsUrl, 'bob')
  await back.nextCode(200)
  t.equal(await pushes(), 1, 'the replay')
  await Promise.all([back.close(), alice.close()])
})
