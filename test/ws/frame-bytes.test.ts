// The bytes of server frames (src/protocol/frames.ts serialises with JSON.stringify, so a
// frame's fields go out in the order it was built in): every frame a session of seed and
// opt-in traffic receives is compact JSON with its fields in the ServerFrame schema's order,
// the six seed fields first, and the seed frames are byte for byte what they always were.
import t from 'tap'
import { ServerFrame } from '../../src/protocol/schemas.js'
import { startApp } from '../helpers/app.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'

const SCHEMA_ORDER = Object.keys(ServerFrame.properties)

/** A client that also keeps the raw text of every frame it receives. */
async function recorded(wsUrl: string, raws: string[], bind?: Record<string, unknown>): Promise<TestClient> {
  const client = await TestClient.connect(wsUrl)
  client.socket.on('message', (data) => raws.push(data.toString()))
  if (bind !== undefined) {
    const reply = await client.request({ type: 'bind', ...bind })
    if (reply.code !== 201) throw new Error(`bind failed: ${JSON.stringify(reply)}`)
  }
  return client
}

/** The raw text of the frame `frame` was parsed from. */
function rawOf(raws: string[], frame: Frame): string {
  const raw = raws.find((text) => {
    const parsed = JSON.parse(text) as Frame
    return parsed.code === frame.code && parsed.mid === frame.mid && parsed.ref === frame.ref && parsed.uid === frame.uid
  })
  if (raw === undefined) throw new Error(`no raw frame for ${JSON.stringify(frame)}`)
  return raw
}

t.test('every frame is compact JSON in the schema order; seed frames byte for byte', async (t) => {
  const { wsUrl } = await startApp(t, { maxMessageLength: 10, rateLimit: 0 })
  const raws: string[] = []

  const alice = await recorded(wsUrl, raws, { uid: 'alice' })
  const bob = await recorded(wsUrl, raws, { uid: 'bob', features: ['receipts', 'typing', 'presence'] })
  const dave = await recorded(wsUrl, raws, { uid: 'dave', features: ['receipts', 'typing', 'presence'] })

  const ack = await alice.request({ type: 'send', uid: 'alice', touid: 'bob', msg: 'h"i\\ é' })
  t.equal(
    rawOf(raws, ack),
    `{"type":"send","error":false,"code":204,"msg":"","uid":"alice","touid":"bob","ref":"${ack.ref}","mid":"${ack.mid}","ts":${ack.ts}}`,
    'a 204 ack, byte for byte',
  )
  const pushed = await bob.nextCode(200)
  t.equal(
    rawOf(raws, pushed),
    `{"type":"send","error":false,"code":200,"msg":"h\\"i\\\\ é","uid":"alice","touid":"bob","mid":"${ack.mid}","ts":${ack.ts}}`,
    'a 200 push, byte for byte, escapes as JSON',
  )

  // Offline replay, join and exit, receipts, typing, presence.
  const offlineAck = await alice.request({ type: 'send', uid: 'alice', touid: 'carol', msg: 'later' })
  const carol = await recorded(wsUrl, raws, { uid: 'carol' })
  const replayed = await carol.nextCode(200)
  t.equal(
    rawOf(raws, replayed),
    `{"type":"send","error":false,"code":200,"msg":"later","uid":"alice","touid":"carol","mid":"${offlineAck.mid}","ts":${offlineAck.ts},"offline":true}`,
    'an offline 200, byte for byte',
  )
  await bob.request({ type: 'join', uid: 'bob', touid: 'dave' })
  await dave.request({ type: 'send', uid: 'dave', touid: 'bob', msg: 'yo' })
  await dave.next((f) => f.code === 205 && f.msg === 'read')
  await bob.request({ type: 'exit', uid: 'bob' })
  bob.send({ type: 'typing', uid: 'bob', touid: 'dave' })
  await dave.nextCode(206)
  t.equal((await dave.request({ type: 'watch', uid: 'dave', touid: 'bob' })).code, 207)

  // Errors, a reset position, a replaced connection.
  alice.send('{not json')
  await alice.nextCode(401)
  await alice.request({ type: 'send', uid: 'alice', touid: 'bob', msg: 'far too long' })
  await alice.request({ type: 'dance', uid: 'alice' })
  const stranger = await recorded(wsUrl, raws)
  await stranger.request({ type: 'send', touid: 'bob', msg: 'x' })
  await stranger.request({ type: 'bind' })
  await stranger.request({ type: 'bind', uid: 'erin', since: '999' })
  const alice2 = await recorded(wsUrl, raws, { uid: 'alice' })
  await alice.nextCode(409)

  const codes = new Set(raws.map((raw) => (JSON.parse(raw) as Frame).code))
  t.same([...codes].sort(), [200, 201, 202, 203, 204, 205, 206, 207, 400, 401, 402, 404, 409, 413], 'the session saw every kind of frame')
  for (const raw of raws) {
    const parsed = JSON.parse(raw) as Record<string, unknown>
    t.equal(raw, JSON.stringify(parsed), `compact: ${raw}`)
    const keys = Object.keys(parsed)
    t.same(keys.slice(0, 6), SCHEMA_ORDER.slice(0, 6), `seed fields first: ${raw}`)
    t.same(keys, SCHEMA_ORDER.filter((key) => key in parsed), `schema order: ${raw}`)
  }
  await Promise.all([alice.close(), alice2.close(), bob.close(), carol.close(), dave.close(), stranger.close()])
})
