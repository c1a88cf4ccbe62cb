// The admin routes the webhook tests use (loopback, no ADMIN_TOKEN set): a server-side send,
// and the outbox's pending count.
import { randomBytes } from 'node:crypto'

/** A WEBHOOK_SECRET of the required length (32 or more characters). */
export const freshSecret = (): string => randomBytes(24).toString('hex')

/** POST /admin/messages; resolves with the stored mid. */
export async function adminSend(url: string, from: string, to: string, msg: string): Promise<string> {
  const response = await fetch(`${url}/admin/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ from, to, msg }),
  })
  if (response.status !== 201) throw new Error(`admin send: ${response.status} ${await response.text()}`)
  return ((await response.json()) as { mid: string }).mid
}

/** GET /admin/webhooks: events waiting to be sent, and the failed ones. */
export async function webhooks(url: string): Promise<{ pending: number; failed: unknown[] }> {
  const response = await fetch(`${url}/admin/webhooks`)
  if (response.status !== 200) throw new Error(`admin webhooks: ${response.status} ${await response.text()}`)
  return (await response.json()) as { pending: number; failed: unknown[] }
}
