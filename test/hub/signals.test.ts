// The signal parts built directly, without sockets: receipts coalesced per event-loop turn and
// never lower than what a connection was sent; typing throttled per pair per second on a clock
// the test moves; features parsed and echoed.
import { setImmediate as nextTurn } from 'node:timers/promises'
import t from 'tap'
import { LocalBroker } from '../../src/cluster/local-broker.js'
import { LocalPresence } from '../../src/cluster/local-presence.js'
import { pino } from 'pino'
import { MemoryMessageStore } from '../../src/store/memory-store.js'
import { FanOut } from '../../src/hub/fan-out.js'
import { acceptFeatures, Feature } from '../../src/hub/features.js'
import { LocalSessions } from '../../src/hub/local-sessions.js'
import { Receipts } from '../../src/hub/receipts.js'
import { Session } from '../../src/hub/session.js'
import { TYPING_THROTTLE_MS, Typing } from '../../src/hub/typing.js'

const logger = pino({ level: 'silent' })

function node() {
  const local = new LocalSessions()
  const fanOut = new FanOut({ presence: new LocalPresence('n'), broker: new LocalBroker(), logger, nodeId: 'n', local })
  /** A bound session of `uid` with `features`, and the frames it was sent. */
  const connect = (uid: string, features: number) => {
    const frames: Array<Record<string, unknown>> = []
    const session = new Session({ send: (data) => (frames.push(JSON.parse(data) as Record<string, unknown>), true), close: () => {} }, '127.0.0.1')
    session.uid = uid
    session.features = features
    session.signalsOn = true
    local.add(session, false)
    return frames
  }
  return { fanOut, connect, local }
}

t.test('features: known names once each, in the order asked', async (t) => {
  t.same(acceptFeatures(undefined), { mask: 0, echo: undefined })
  t.same(acceptFeatures([]), { mask: 0, echo: [] })
  t.same(acceptFeatures(['typing', 'x', 'receipts', 'typing', 'carbons']), { mask: Feature.typing | Feature.receipts | Feature.carbons, echo: ['typing', 'receipts', 'carbons'] })
  t.same(acceptFeatures(['carbons', 'presence', '__proto__', 'toString']), { mask: Feature.carbons | Feature.presence, echo: ['carbons', 'presence'] })
})

t.test('receipts: one frame per pair and kind per turn, the highest mid; never down; read raises delivered', async (t) => {
  const { fanOut, connect } = node()
  const receipts = new Receipts({ fanOut, store: new MemoryMessageStore(), logger, readReceipts: true })
  const alice = connect('alice', Feature.receipts)
  const plain = connect('alice', 0)
  for (const mid of ['5', '9', '7', '10', '8']) receipts.delivered('alice', 'bob', mid)
  receipts.delivered('alice', 'carol', '3')
  receipts.delivered('alice', 'alice', '11') // to yourself: no receipt
  t.same(alice, [], 'nothing within the turn')
  await nextTurn()
  t.same(
    alice.map((f) => [f.msg, f.uid, f.mid]),
    [
      ['delivered', 'bob', '10'],
      ['delivered', 'carol', '3'],
    ],
  )
  receipts.delivered('alice', 'bob', '9')
  receipts.read('alice', 'bob', '12')
  await nextTurn()
  receipts.delivered('alice', 'bob', '12')
  receipts.read('alice', 'bob', '11')
  await nextTurn()
  t.same(
    alice.slice(2).map((f) => [f.msg, f.mid]),
    [['read', '12']],
    'a lower mark is not sent, and read 12 covered delivered 12',
  )
  t.same(plain, [], 'a session without the feature gets nothing')
})

t.test('receipts: READ_RECEIPTS=false drops read receipts only', async (t) => {
  const { fanOut, connect } = node()
  const receipts = new Receipts({ fanOut, store: new MemoryMessageStore(), logger, readReceipts: false })
  const alice = connect('alice', Feature.receipts)
  receipts.read('alice', 'bob', '4')
  receipts.delivered('alice', 'bob', '4')
  await nextTurn()
  t.same(
    alice.map((f) => [f.msg, f.mid]),
    [['delivered', '4']],
  )
})

t.test('typing: once per pair per second, per pair', async (t) => {
  const { fanOut, connect } = node()
  let now = 1_000
  const typing = new Typing({ fanOut, now: () => now })
  const bob = connect('bob', Feature.typing)
  const carol = connect('carol', Feature.typing)
  t.equal(typing.forward('alice', 'bob'), true)
  t.equal(typing.forward('alice', 'bob'), false)
  t.equal(typing.forward('alice', 'carol'), true, 'another pair has its own second')
  t.equal(typing.forward('dave', 'bob'), true, 'so does another sender')
  now += TYPING_THROTTLE_MS - 1
  t.equal(typing.forward('alice', 'bob'), false)
  now += 1
  t.equal(typing.forward('alice', 'bob'), true, 'a second later, the next one goes')
  t.same(
    bob.map((f) => [f.type, f.code, f.uid, f.touid]),
    [
      ['typing', 206, 'alice', 'bob'],
      ['typing', 206, 'dave', 'bob'],
      ['typing', 206, 'alice', 'bob'],
    ],
  )
  t.equal(carol.length, 1)
})

t.test('fan-out: nothing before the 201; a carbon for a session replaying its bind is held for after it', async (t) => {
  const { fanOut, local } = node()
  const frames: string[] = []
  const session = new Session({ send: (data) => (frames.push(data), true), close: () => {} }, '127.0.0.1')
  session.uid = 'alice'
  session.features = Feature.carbons | Feature.receipts
  session.beginBind()
  local.add(session, false)
  const message = { mid: '7', from: 'alice', to: 'bob', msg: 'hi', ts: 1, read: false }
  t.equal(fanOut.toLocal('alice', Feature.receipts, () => 'receipt'), 0)
  t.equal(fanOut.toLocal('alice', Feature.carbons, () => 'carbon', null, message), 0)
  t.same(frames, [], 'nothing sent while the bind is in flight')
  t.match(session.takeHeld(), [{ message: { mid: '7', from: 'alice', to: 'bob' }, data: 'carbon' }], 'the carbon waits for the replay')
  session.signalsOn = true
  t.equal(fanOut.toLocal('alice', Feature.receipts, () => 'receipt'), 1)
  t.same(frames, ['receipt'])
})
