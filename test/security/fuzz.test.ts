// Property-based fuzzing of client frames over a real socket, and prototype keys.
// Property: whatever a client sends, the server answers that frame with exactly one
// well-formed frame (six seed fields, a code from the table, its ref echoed when it had a
// readable one) or closes with a documented close code; it never crashes, and two other
// clients keep talking throughout.
import t from 'tap'
import fc from 'fast-check'
import { CODE_TABLE } from '../../src/protocol/codes.js'
import { startApp } from '../helpers/app.js'
import { TestClient, type Frame } from '../helpers/ws-client.js'
import { signToken, TEST_SECRET } from '../helpers/tokens.js'

const MAX_PAYLOAD = 8192
const CODES = new Set<number>(CODE_TABLE.map((c) => c.code))
/** 1007 invalid UTF-8 (ws, RFC 6455), 1008 limits, 1009 too big, 4009 replaced. */
const DOCUMENTED_CLOSES = new Set([1007, 1008, 1009, 4009])
const WATCHERS = ['watch-a', 'watch-b']

interface Probe {
  data: string | Buffer
  binary: boolean
}

const KEYS = ['type', 'uid', 'touid', 'msg', 'ref', 'token', 'since', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf']
const uidish = fc.oneof(
  fc.constantFrom('alice', 'bob', 'fuzz', '__proto__', 'constructor', '', ' ', 'a\u0000b', '😀', 'x'.repeat(128), 'x'.repeat(129)),
  fc.string({ maxLength: 12 }).filter((s) => !WATCHERS.includes(s)),
)
const value: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: uidish },
  fc.constantFrom('0', '1', '007', '99999999999999999999', '999999999999999999999', '-1', '1e3'),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ minLength: 60, maxLength: 80 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 }), { maxKeys: 3 }),
)
const typeValue = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('bind', 'send', 'join', 'exit') },
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'BIND', ' send', ''),
  value,
)
const key = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...KEYS) }, fc.string({ maxLength: 8 }))
const enc = (v: unknown): string => JSON.stringify(v) ?? 'null'

/** A JSON object written by hand, so duplicate and __proto__ keys reach the server as sent. */
const objectFrame: fc.Arbitrary<Probe> = fc
  .record({
    type: fc.option(typeValue, { nil: undefined, freq: 8 }),
    fields: fc.array(fc.tuple(key, value), { maxLength: 6 }),
  })
  .map(({ type, fields }) => {
    const members = fields.map(([k, v]) => `${enc(k)}:${enc(v)}`)
    if (type !== undefined) members.unshift(`"type":${enc(type)}`)
    return { data: `{${members.join(',')}}`, binary: false }
  })

const probe: fc.Arbitrary<Probe> = fc.oneof(
  { weight: 12, arbitrary: objectFrame },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => ({ data: enc(v), binary: false })) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((s) => ({ data: s, binary: false })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => ({ data: Buffer.from(b), binary: true })) },
  // Bytes in a text frame: invalid UTF-8 is a protocol error (close 1007).
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 20 }).map((b) => ({ data: Buffer.from([0xc3, 0x28, ...b]), binary: false })) },
  { weight: 1, arbitrary: fc.integer({ min: MAX_PAYLOAD + 1, max: 2 * MAX_PAYLOAD }).map((n) => ({ data: 'x'.repeat(n), binary: false })) },
)

/** The ref the server echoes, if any: a valid one, a string of at most 64 characters with no NUL and no lone surrogate. */
function readableRef(p: Probe): string | undefined {
  if (p.binary || typeof p.data !== 'string') return undefined
  try {
    const v = JSON.parse(p.data) as unknown
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
    const ref = (v as Record<string, unknown>).ref
    return typeof ref === 'string' && ref.length <= 64 && !ref.includes('\u0000') && ref.isWellFormed() ? ref : undefined
  } catch {
    return undefined
  }
}

t.test('fuzzed frames: one well-formed reply each, or a documented close; others unaffected', async (t) => {
  const { wsUrl, app } = await startApp(t, { rateLimit: 0, maxBindAttempts: 1000, maxPayloadBytes: MAX_PAYLOAD })
  const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort()
  const [a, b] = await Promise.all(WATCHERS.map((uid) => TestClient.bound(wsUrl, uid)))
  let client = await TestClient.connect(wsUrl)
  let sentinel = 0
  let closes = 0
  let round = 0

  const exchange = async (p: Probe): Promise<void> => {
    const ref = `sentinel-${++sentinel}`
    const expectedRef = readableRef(p)
    client.sendRaw(p.data, p.binary)
    client.send({ type: 'sentinel', ref })
    const outcome = await Promise.race([
      client.next((f) => f.ref === ref).then(
        () => 'answered' as const,
        () => 'closed' as const,
      ),
      client.closed.then(() => 'closed' as const),
    ])
    const replies = client.frames.splice(0).filter((f: Frame) => f.code !== 200 && f.ref !== ref)
    if (outcome === 'closed') {
      const { code } = await client.closed
      if (!DOCUMENTED_CLOSES.has(code)) throw new Error(`undocumented close ${code} after ${JSON.stringify(String(p.data).slice(0, 200))}`)
      closes++
      client = await TestClient.connect(wsUrl)
      return
    }
    if (replies.length !== 1) throw new Error(`${replies.length} replies to ${JSON.stringify(String(p.data).slice(0, 200))}: ${JSON.stringify(replies)}`)
    const reply = replies[0]!
    for (const [field, type] of [['type', 'string'], ['error', 'boolean'], ['code', 'number'], ['msg', 'string'], ['uid', 'string'], ['touid', 'string']] as const) {
      if (typeof reply[field] !== type) throw new Error(`reply lacks ${field}: ${JSON.stringify(reply)}`)
    }
    if (!CODES.has(reply.code)) throw new Error(`code ${reply.code} is not in the table`)
    if (reply.error !== reply.code >= 400) throw new Error(`error flag wrong: ${JSON.stringify(reply)}`)
    if (expectedRef !== undefined && reply.ref !== expectedRef) throw new Error(`ref not echoed: sent ${expectedRef}, got ${JSON.stringify(reply)}`)
    // Every few rounds, the bystanders still talk.
    if (++round % 50 === 0) {
      const ack = await a.request({ type: 'send', touid: 'watch-b', msg: `still here ${round}` })
      if (ack.code !== 204) throw new Error(`bystander send failed: ${JSON.stringify(ack)}`)
      await b.next((f) => f.code === 200 && f.msg === `still here ${round}`)
    }
  }

  await fc.assert(fc.asyncProperty(probe, exchange), { numRuns: 1500, endOnFailure: true })
  t.comment(`${sentinel} frames, ${closes} documented closes`)
  t.pass('every fuzzed frame got one well-formed reply or a documented close')
  t.same(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore, 'Object.prototype untouched')
  t.same(app.hub.registry.onlineUids().filter((u) => WATCHERS.includes(u)).sort(), WATCHERS, 'bystanders still online')
  t.match(await a.request({ type: 'send', touid: 'watch-b', msg: 'after the fuzz' }), { code: 204 })
  t.match(await b.next((f) => f.msg === 'after the fuzz'), { code: 200, uid: 'watch-a' })
  await Promise.all([a.close(), b.close(), client.close()])
})

t.test('__proto__ and constructor keys and values do nothing special', async (t) => {
  const { wsUrl, app } = await startApp(t, { jwtSecret: TEST_SECRET })
  const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort()
  const token = async (sub: string) => signToken({ sub })
  const c = await TestClient.connect(wsUrl)

  for (const type of ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
    t.match(await c.request({ type }), { code: 404, type }, `type "${type}" is unknown`)
  }
  const viaProto = c.next()
  c.send('{"__proto__":{"type":"bind","uid":"alice"},"ref":"p1"}')
  t.match(await viaProto, { code: 400, msg: /type/, ref: 'p1' }, 'a type inherited through __proto__ is not a type')
  const tokenViaProto = c.next()
  c.send(`{"type":"bind","uid":"alice","__proto__":{"token":${JSON.stringify(await token('alice'))}},"ref":"p2"}`)
  t.match(await tokenViaProto, { code: 406, ref: 'p2' }, 'a token inherited through __proto__ is not a token')

  t.match(await c.request({ type: 'bind', uid: 'alice', token: await token('alice') }), { code: 201 })
  const proto = await TestClient.bound(wsUrl, '__proto__', { token: await token('__proto__') })
  const ctor = await TestClient.bound(wsUrl, 'constructor', { token: await token('constructor') })
  const spoof = c.next()
  c.send('{"type":"send","touid":"__proto__","msg":"to proto","__proto__":{"uid":"mallory"},"ref":"p3"}')
  t.match(await spoof, { code: 204, uid: 'alice', ref: 'p3' }, 'sender is the bound uid, not one from __proto__')
  t.match(await proto.nextCode(200), { msg: 'to proto', uid: 'alice', touid: '__proto__' }, 'uid "__proto__" is an ordinary user')
  t.match(await c.request({ type: 'send', touid: 'constructor', msg: 'to ctor' }), { code: 204 })
  t.match(await ctor.nextCode(200), { msg: 'to ctor', touid: 'constructor' }, 'uid "constructor" is an ordinary user')
  t.match(await c.request({ type: 'join', touid: 'hasOwnProperty' }), { code: 202 })
  t.same((await app.store.conversations('__proto__', null, 10)).map((s) => s.peer), ['alice'])
  t.same(app.hub.registry.onlineUids().sort(), ['__proto__', 'alice', 'constructor'])
  t.same(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeBefore, 'Object.prototype untouched')
  t.equal(({} as Record<string, unknown>).uid, undefined)
  await Promise.all([c.close(), proto.close(), ctor.close()])
})
