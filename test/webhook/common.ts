// What the webhook tests share: the admin token and a webhook secret, the outbox's admin
// routes, the /metrics values, and a send that resolves with the sender's 204.
import type { Config } from '../../src/config/schema.js'
import { eventually } from '../helpers/eventually.js'
import type { Frame, TestClient } from '../helpers/ws-client.js'
import type { Receiver } from './receiver.js'

export const TOKEN = 'admin-secret-token'
export const admin = { authorization: `Bearer ${TOKEN}` }
/** 40 characters: over WEBHOOK_SECRET's minimum of 32. */
export const SECRET = 'webhook-test-secret-0123456789abcdefghij'

/** The config of an app that sends its events to `receiver`. */
export function webhookConfig(receiver: Receiver, extra: Partial<Config> = {}): Partial<Config> {
  return { adminToken: TOKEN, webhookUrl: receiver.url(), webhookSecret: SECRET, ...extra }
}

export interface FailedEventView {
  id: string
  type: string
  attempts: number
  lastError: string
  lastAttemptAt: number
  message: { mid: string; from: string; to: string; msg: string; ts: number }
}

export interface WebhooksPage {
  pending: number
  failed: FailedEventView[]
  nextBefore: string | null
}

/** GET /admin/webhooks, with a query string when given. */
export async function webhooks(url: string, query = ''): Promise<WebhooksPage> {
  const res = await fetch(`${url}/admin/webhooks${query}`, { headers: admin })
  if (res.status !== 200) throw new Error(`GET /admin/webhooks${query}: ${res.status} ${await res.text()}`)
  return (await res.json()) as WebhooksPage
}

/** Waits (bounded) until the outbox holds no pending event and `failed` failed ones. */
export function settled(url: string, failed: number, what = `the outbox settled with ${failed} failed`): Promise<WebhooksPage> {
  return eventually(async () => {
    const page = await webhooks(url)
    return page.pending === 0 && page.failed.length === failed ? page : undefined
  }, what)
}

/** POST /admin/webhooks/:id/retry. */
export function retry(url: string, id: string): Promise<Response> {
  return fetch(`${url}/admin/webhooks/${encodeURIComponent(id)}/retry`, { method: 'POST', headers: admin })
}

/** POST /admin/messages; resolves with the status and the answer. */
export async function serverSend(url: string, body: { from: string; to: string; msg: string; ref?: string }): Promise<{ status: number; mid: string; ts: number }> {
  const res = await fetch(`${url}/admin/messages`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const answer = (await res.json()) as { mid: string; ts: number }
  return { status: res.status, mid: answer.mid, ts: answer.ts }
}

/** A WebSocket send; resolves with the sender's 204 (throws on any other answer). */
export async function send(client: TestClient, touid: string, msg: string): Promise<Frame> {
  const ack = await client.request({ type: 'send', touid, msg })
  if (ack.code !== 204) throw new Error(`send to ${touid} answered ${JSON.stringify(ack)}`)
  return ack
}

/** The value of one sample of /metrics (`name` with its labels, if any); undefined when absent. */
export function sample(metrics: string, name: string): number | undefined {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const match = new RegExp(`^${escaped}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(metrics)
  return match === null ? undefined : Number(match[1])
}

export async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`, { headers: admin })
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`)
  return res.text()
}
