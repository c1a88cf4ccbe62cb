// Duet-Signature: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, keyed with
// WEBHOOK_SECRET. The time is signed with the body, so a captured request cannot be replayed
// after the receiver's tolerance window. verifySignature is the recipe the README documents.
import { createHmac, timingSafeEqual } from 'node:crypto'

/** The receiver's default window: a signature older or newer than this is refused. */
export const TOLERANCE_SECONDS = 300

export function sign(secret: string, body: string, t: number = Math.floor(Date.now() / 1000)): string {
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`
}

/** True when `header` signs `body` (the raw bytes as received) with `secret`, within the window. */
export function verifySignature(secret: string, body: string, header: string, now = Date.now(), tolerance = TOLERANCE_SECONDS): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header)
  if (match === null) return false
  const t = Number(match[1])
  if (Math.abs(now / 1000 - t) > tolerance) return false
  const expected = createHmac('sha256', secret).update(`${match[1]}.${body}`).digest()
  return timingSafeEqual(expected, Buffer.from(match[2]!, 'hex'))
}
