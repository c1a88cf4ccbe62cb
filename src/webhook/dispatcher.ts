// Sends the outbox's events to WEBHOOK_URL: claims due events (leased to this node, so no
// other node sends them meanwhile), POSTs each signed, and settles the try in the outbox:
// sent, retry later (retry-policy.ts), or failed. At most WEBHOOK_CONCURRENCY requests are in
// flight and only those events are in memory: a receiver that is down leaves its events on
// disk, due again at their next try, and costs the chat path nothing but the outbox writes.
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../logger.js'
import type { StoredMessage } from '../protocol/message.js'
import { eventBody, type Outbox, type OutboxEvent, type TryOutcome } from '../store/outbox.js'
import { judgeStatus, retryGap } from './retry-policy.js'
import { sign } from './signature.js'

/** A claim outlives a try by this much, so a live node always settles before its lease ends. */
const LEASE_MARGIN_MS = 10_000
/** How often the outbox is asked for due events besides this node's own (other nodes', retries). */
const POLL_MS = 1000

export type TryResult = TryOutcome['kind']

export interface WebhookMetrics {
  /** One try: its outcome and how long the request took. */
  tried(result: TryResult, seconds: number): void
}

export interface WebhookSettings {
  url: string
  secret: string
  timeoutMs: number
  maxAttempts: number
  concurrency: number
}

export interface DispatcherOptions extends WebhookSettings {
  outbox: Outbox
  nodeId: string
  logger: Logger
  metrics?: WebhookMetrics | undefined
  /** For the jitter; Math.random by default. */
  random?: () => number
}

export class WebhookDispatcher {
  /** Unique per run: a settle after a restart can never pass for this run's claim. */
  private readonly claimId: string
  private inFlight = 0
  private claiming = false
  /** A wake came while a claim was running: claim again after it. */
  private wokenMeanwhile = false
  private closed = false
  private readonly requests = new Set<AbortController>()
  private poller: NodeJS.Timeout | undefined
  private timer: NodeJS.Timeout | undefined
  private timerAt = Infinity
  /** Tries in a row that did not reach the receiver or that it refused for now. */
  private failuresInARow = 0
  /** No claim before this (ms): the receiver refused a whole round of tries. */
  private pausedUntil = 0
  private idle: Array<() => void> = []

  constructor(private readonly options: DispatcherOptions) {
    this.claimId = `${options.nodeId}#${randomUUID()}`
  }

  start(): void {
    this.poller = setInterval(() => this.pump(), POLL_MS)
    this.poller.unref()
    this.pump()
  }

  /** An event was written with a message: send it now rather than at the next poll. */
  stored(): void {
    this.pump()
  }

  /** A message stored as going to a live connection reached none: write its event now. */
  missed(message: StoredMessage): void {
    this.options.outbox.add(message).then(
      () => this.pump(),
      (err: unknown) => this.options.logger.error({ err, mid: message.mid }, 'webhook event not written for a push that reached nobody'),
    )
  }

  /** Stops claiming, cuts the requests in flight and gives their events back, untried. */
  async close(): Promise<void> {
    this.closed = true
    clearInterval(this.poller)
    clearTimeout(this.timer)
    for (const request of this.requests) request.abort()
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.push(resolve))
    await this.options.outbox.release(this.claimId)
  }

  private pump(): void {
    if (this.closed) return
    if (this.claiming) {
      this.wokenMeanwhile = true
      return
    }
    const free = this.options.concurrency - this.inFlight
    const now = Date.now()
    if (free <= 0 || now < this.pausedUntil) return
    // A receiver that refused a whole round of tries is down or overloaded: wait a gap before
    // the next claim (the timer pumps then), rather than spend every due event's tries at once.
    if (this.failuresInARow >= this.options.concurrency) {
      this.failuresInARow = 0
      this.pausedUntil = now + retryGap(1, this.options.random)
      this.wakeAt(this.pausedUntil)
      return
    }
    this.claiming = true
    this.wokenMeanwhile = false
    this.options.outbox
      .claim(this.claimId, free, now, now + this.options.timeoutMs + LEASE_MARGIN_MS)
      .then(
        (events) => {
          for (const event of events) void this.deliver(event)
        },
        (err: unknown) => this.options.logger.error({ err }, 'webhook outbox claim failed'),
      )
      .finally(() => {
        this.claiming = false
        if (this.wokenMeanwhile) this.pump()
      })
  }

  /** Pumps at `at` (ms), unless a pump is due sooner already. */
  private wakeAt(at: number): void {
    if (this.closed || at >= this.timerAt) return
    clearTimeout(this.timer)
    this.timerAt = at
    this.timer = setTimeout(
      () => {
        this.timerAt = Infinity
        this.pump()
      },
      Math.max(0, at - Date.now()),
    )
    this.timer.unref()
  }

  private async deliver(event: OutboxEvent): Promise<void> {
    const { url, secret, timeoutMs, maxAttempts, metrics } = this.options
    this.inFlight++
    const request = new AbortController()
    this.requests.add(request)
    const timeout = setTimeout(() => request.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
    const started = performance.now()
    const body = eventBody(event)
    let result: TryResult
    let error = ''
    try {
      const response = await fetch(url, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', 'duet-event-id': event.id, 'duet-signature': sign(secret, body) },
        redirect: 'manual',
        signal: request.signal,
      })
      // Nothing of the answer but its status is used: do not wait for (or hold) its body.
      await response.body?.cancel().catch(() => undefined)
      result = judgeStatus(response.status)
      if (result !== 'sent') error = `HTTP ${response.status}`
    } catch (err) {
      result = 'retry'
      error = describe(request.signal.aborted ? request.signal.reason : err)
    } finally {
      clearTimeout(timeout)
      this.requests.delete(request)
    }
    const seconds = (performance.now() - started) / 1000
    const tries = event.attempts + 1
    if (result === 'retry' && tries >= maxAttempts) result = 'failed'
    if (!this.closed) {
      metrics?.tried(result, seconds)
      await this.settle(event, tries, result, error)
    }
    this.inFlight--
    if (this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve()
    this.pump()
  }

  private async settle(event: OutboxEvent, tries: number, result: TryResult, error: string): Promise<void> {
    const { logger, outbox } = this.options
    const at = Date.now()
    let outcome: TryOutcome
    if (result === 'sent') {
      if (this.failuresInARow > 0) logger.info({ id: event.id }, 'webhook receiver answers again')
      this.failuresInARow = 0
      outcome = { kind: 'sent', at }
    } else if (result === 'retry') {
      if (this.failuresInARow++ === 0) logger.warn({ id: event.id, tries, error }, 'webhook try failed: retrying with backoff')
      const retryAt = at + retryGap(tries, this.options.random)
      outcome = { kind: 'retry', at, error, retryAt }
      this.wakeAt(retryAt)
    } else {
      logger.warn({ id: event.id, mid: event.message.mid, tries, error }, 'webhook event failed: see GET /admin/webhooks')
      outcome = { kind: 'failed', at, error }
    }
    await outbox.settle(this.claimId, event.id, outcome).catch((err: unknown) => {
      // The lease runs out and the event is tried again: a duplicate, never a loss.
      logger.error({ err, id: event.id }, 'webhook outcome not recorded')
    })
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  // fetch says "fetch failed"; the reason (ECONNREFUSED, a DNS error) is its cause.
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
  return `${err.message}${cause}`.slice(0, 500)
}
