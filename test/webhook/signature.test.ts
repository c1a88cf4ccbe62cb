// Duet-Signature, checked as a receiver would with node:crypto and nothing of duet's:
// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` keyed with WEBHOOK_SECRET, within
// 300 s of now. A tampered body or another secret fails. The body names the message as the
// sender's 204 did; Content-Type and Duet-Event-Id say what it is.
import { createHmac, timingSafeEqual } from 'node:crypto'
import t from 'tap'
import { startApp } from '../helpers/app.js'
import { TestClient } from '../helpers/ws-client.js'
import { SECRET, send, serverSend, webhookConfig } from './common.js'
import { eventOf, Receiver } from './receiver.js'

const TOLERANCE_SECONDS = 300
/** The store's tag (16 hex digits), a dash, the message's mid. */
const EVENT_ID = /^[0-9a-f]{16}-[0-9]+$/

/** The receiver's check, as documented: parse, recompute over `${t}.${raw body}`, compare in constant time, bound the age. */
function verify(secret: string, rawBody: Buffer, header: string | undefined, nowMs: number): boolean {
  if (header === undefined) return false
  const parts = new Map<string, string>()
  for (const part of header.split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) parts.set(part.slice(0, eq), part.slice(eq + 1))
  }
  const t = parts.get('t')
  const v1 = parts.get('v1')
  if (t === undefined || v1 === undefined || !/^\d+$/.test(t) || !/^[0-9a-f]{64}$/.test(v1)) return false
  const expected = createHmac('sha256', secret)
    .update(Buffer.concat([Buffer.from(`${t}.`, 'utf8'), rawBody]))
    .digest()
  const given = Buffer.from(v1, 'hex')
  if (given.length !== expected.length || !timingSafeEqual(expected, given)) return false
  return Math.abs(nowMs / 1000 - Number(t)) <= TOLERANCE_SECONDS
}

t.test('an offline message is POSTed signed, naming the message as its 204 did', async (t) => {
  const receiver = await Receiver.start(t)
  const { wsUrl } = await startApp(t, { ...webhookConfig(receiver), webhookUrl: receiver.url('/hooks/duet?source=test') })
  const alice = await TestClient.bound(wsUrl, 'alice')
  t.teardown(() => alice.close())
  // Not ASCII: the signature covers the body's bytes as sent.
  const msg = 'héllo bob 😀 "quoted" \\ end'
  const ack = await send(alice, 'bob', msg)

  const request = await receiver.nth(1)
  t.equal(request.method, 'POST')
  t.equal(request.url, '/hooks/duet?source=test', 'to WEBHOOK_URL, path and query as set')
  t.equal(request.headers['content-type'], 'application/json')

  const header = request.headers['duet-signature']
  t.type(header, 'string')
  t.match(header, /^t=\d+,v1=[0-9a-f]{64}$/, 'Duet-Signature: t=<unix seconds>,v1=<64 hex>')
  const signedAt = Number(/^t=(\d+)/.exec(String(header))![1])
  t.ok(Math.abs(request.wallClock / 1000 - signedAt) <= TOLERANCE_SECONDS, 't is unix seconds, now')
  t.ok(verify(SECRET, request.raw, header as string, request.wallClock), 'verifies with WEBHOOK_SECRET')

  const tampered = Buffer.from(request.raw)
  const at = tampered.indexOf('bob')
  tampered[at] = 'B'.charCodeAt(0)
  t.notOk(verify(SECRET, tampered, header as string, request.wallClock), 'a tampered body fails')
  t.notOk(verify(`${SECRET}x`, request.raw, header as string, request.wallClock), 'another secret fails')
  t.notOk(verify(SECRET, request.raw, header as string, request.wallClock + (TOLERANCE_SECONDS + 5) * 1000), 'too old fails')
  const otherV1 = String(header).replace(/v1=([0-9a-f])/, (_, c: string) => `v1=${c === '0' ? '1' : '0'}`)
  t.notOk(verify(SECRET, request.raw, otherV1, request.wallClock), 'a changed signature fails')
  const otherT = String(header).replace(/^t=(\d+)/, (_, s: string) => `t=${Number(s) - 1}`)
  t.notOk(verify(SECRET, request.raw, otherT, request.wallClock), 'the time is signed too')

  const event = eventOf(request)
  t.same(Object.keys(event), ['id', 'type', 'ts', 'message'])
  t.same(Object.keys(event.message), ['mid', 'from', 'to', 'msg', 'ts'])
  t.match(event.id, EVENT_ID)
  t.equal(event.id.split('-')[1], event.message.mid, 'the id names the message')
  t.equal(request.headers['duet-event-id'], event.id, 'Duet-Event-Id is the body id')
  t.equal(event.type, 'message.offline')
  t.type(event.ts, 'number')
  t.ok(Number.isInteger(event.ts) && Math.abs(event.ts - Date.now()) < 60_000, 'ts: ms since epoch')
  t.same(event.message, { mid: ack.mid, from: 'alice', to: 'bob', msg, ts: ack.ts }, "mid and ts are the 204's")
  t.equal(receiver.requests.length, 1)
})

t.test('a server-side send signs with the secret too', async (t) => {
  const receiver = await Receiver.start(t)
  const otherSecret = 'z'.repeat(32)
  const { url } = await startApp(t, { ...webhookConfig(receiver), webhookSecret: otherSecret })
  const sent = await serverSend(url, { from: 'system', to: 'carol', msg: 'hi' })
  t.equal(sent.status, 201)
  const request = await receiver.nth(1)
  t.ok(verify(otherSecret, request.raw, request.headers['duet-signature'] as string, request.wallClock), 'verifies with this app’s secret')
  t.notOk(verify(SECRET, request.raw, request.headers['duet-signature'] as string, request.wallClock), 'not with another')
  t.match(eventOf(request).message, { mid: sent.mid, ts: sent.ts, from: 'system', to: 'carol', msg: 'hi' })
})
