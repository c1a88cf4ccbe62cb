// Sends the outbox's events to WEBHOOK_URL: claims due events (leased to this node, so no
// other node sends them meanwhile), POSTs each signed, and settles the try in the outbox:
// sent, retry later (retry-policy.ts), or failed. At most WEBHOOK_CONCURRENCY requests are in
// flight and only those events are in memory: a receiver that is down leaves its events on
// disk, due again at their next try. Claims and settles are made once per event-loop turn,
// for every request that ended in it: under load, one store write serves many events.
import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { Logger } from '../logger.js'
import type { StoredMessage } from '../protocol/message.js'
import { eventBody, type Outbox, type OutboxEvent, type SettledTry, type TryOutcome } from '../store/outbox.js'
import { createPoster, type Poster } from './http-post.js'
import { judgeStatus, retryGap } from './retry-policy.js'
import { sign } from './signature.js'

/** A claim outlives a try by this much, so a live node always settles before its lease ends. */
const LEASE_MARGIN_MS = 10_000
/** How often the outbox is asked for due events besides this node's own (other nodes', retries). */
const POLL_MS = 1000
/** Failed events are logged at most this often, with how many failed since the last line. */
const FAILED_LOG_MS = 10_000

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
  private readonly poster: Poster
  private inFlight = 0
  private claimQueued = false
  /** The claim in flight, which close() waits for: its events must be released, not sent. */
  private claiming: Promise<void> | null = null
  /** A wake came while a claim was running: claim again after it. */
  private wokenMeanwhile = false
  private closed = false
  private readonly requests = new Set<AbortController>()
  /** Tries ended this turn, settled together at its end. */
  private settles: SettledTry[] = []
  private settling: Promise<void> | undefined
  private poller: NodeJS.Timeout | undefined
  private timer: NodeJS.Timeout | undefined
  private timerAt = Infinity
  /** Tries in a row that did not reach the receiver or that it refused for now. */
  private failuresInARow = 0
  /** The receiver has failed tries since its last 2xx: the warning was logged once. */
  private failing = false
  /** Events failed since the last warning about them, logged at most every FAILED_LOG_MS. */
  private failedUnlogged = 0
  private failedLoggedAt = 0
  /** No claim before this (ms): the receiver refused a whole round of tries. */
  private pausedUntil = 0
  private idle: Array<() => void> = []

  constructor(private readonly options: DispatcherOptions) {
    this.claimId = `${options.nodeId}#${randomUUID()}`
    this.poster = createPoster(options.url, options.concurrency)
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
    await this.claiming
    if (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.push(resolve))
    await this.flushSettles()
    await this.options.outbox.release(this.claimId)
    this.poster.close()
  }

  /** Claims at the end of this turn, once for every wake in it. */
  private pump(): void {
    if (this.closed || this.claimQueued) return
    this.claimQueued = true
    setImmediate(() => {
      this.claimQueued = false
      this.claim()
    })
  }

  private claim(): void {
    if (this.closed) return
    if (this.claiming !== null) {
      this.wokenMeanwhile = true
      return
    }
    const free = this.options.concurrency - this.inFlight
    const now = Date.now()
    if (free <= 0) return
    if (now < this.pausedUntil) {
      this.wakeAt(this.pausedUntil)
      return
    }
    // A receiver that refused a whole round of tries is down or overloaded: wait a gap before
    // the next claim (the timer pumps then), rather than spend every due event's tries at once.
    if (this.failuresInARow >= this.options.concurrency) {
      this.failuresInARow = 0
      this.pausedUntil = now + retryGap(1, this.options.random)
      this.wakeAt(this.pausedUntil)
      return
    }
    this.wokenMeanwhile = false
    const leaseUntil = now + this.options.timeoutMs + LEASE_MARGIN_MS
    this.claiming = this.options.outbox
      .claim(this.claimId, free, now, leaseUntil)
      .then(async (events) => {
        // Closed meanwhile: close() releases them, untried.
        if (this.closed) return
        for (const event of events) void this.deliver(event, leaseUntil)
        // Nothing more due now: wake when the next event is (a retry, here or on another node).
        if (events.length < free) {
          const next = await this.options.outbox.nextDue(now)
          if (next !== null) this.wakeAt(next)
        }
      })
      .catch((err: unknown) => this.options.logger.error({ err }, 'webhook outbox claim failed'))
      .finally(() => {
        this.claiming = null
        if (this.wokenMeanwhile) this.pump()
      })
  }

  /** Pumps at `at` (ms), unless a pump is due sooner already; a pump then sets the next. */
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

  private async deliver(event: OutboxEvent, leaseUntil: number): Promise<void> {
    const { secret, timeoutMs, maxAttempts, metrics } = this.options
    // A claim that answered late (a loaded store) may leave too little of the lease for a try
    // and its settle: another node may take the event meanwhile. Leave it to the lease's end.
    if (Date.now() + timeoutMs + LEASE_MARGIN_MS / 2 > leaseUntil) {
      this.options.logger.debug({ id: event.id }, 'webhook claim answered late: left to its lease')
      return
    }
    this.inFlight++
    const request = new AbortController()
    this.requests.add(request)
    const started = performance.now()
    const body = eventBody(event)
    const headers = { 'content-type': 'application/json', 'duet-event-id': event.id, 'duet-signature': sign(secret, body) }
    let result: TryResult
    let error = ''
    try {
      const status = await this.poster.post(body, headers, timeoutMs, request.signal)
      result = judgeStatus(status)
      if (result !== 'sent') error = `HTTP ${status}`
    } catch (err) {
      result = 'retry'
      error = describe(err)
    }
    this.requests.delete(request)
    const tries = event.attempts + 1
    if (result === 'retry' && tries >= maxAttempts) result = 'failed'
    // Cut by close: not a try; the release gives the event back.
    if (!request.signal.aborted) {
      metrics?.tried(result, (performance.now() - started) / 1000)
      this.record(event, tries, result, error)
    }
    this.inFlight--
    if (this.inFlight === 0) for (const resolve of this.idle.splice(0)) resolve()
    this.pump()
  }

  private record(event: OutboxEvent, tries: number, result: TryResult, error: string): void {
    const { logger } = this.options
    const at = Date.now()
    if (result === 'sent') {
      if (this.failing) logger.info({ id: event.id }, 'webhook receiver answers again')
      this.failing = false
      this.failuresInARow = 0
      this.settle({ id: event.id, kind: 'sent', at })
    } else if (result === 'retry') {
      this.failuresInARow++
      if (!this.failing) logger.warn({ id: event.id, tries, error }, 'webhook try failed: retrying with backoff')
      this.failing = true
      const retryAt = at + retryGap(tries, this.options.random)
      this.settle({ id: event.id, kind: 'retry', at, error, retryAt })
      this.wakeAt(retryAt)
    } else {
      // A receiver refusing everything fails every event: one line per FAILED_LOG_MS, counted.
      this.failedUnlogged++
      if (at - this.failedLoggedAt >= FAILED_LOG_MS) {
        logger.warn({ id: event.id, tries, error, failed: this.failedUnlogged }, 'webhook events failed: see GET /admin/webhooks')
        this.failedUnlogged = 0
        this.failedLoggedAt = at
      }
      this.settle({ id: event.id, kind: 'failed', at, error })
    }
  }

  /** Queues a try's outcome; the turn's outcomes are written together at its end. */
  private settle(outcome: SettledTry): void {
    if (this.settles.push(outcome) === 1) setImmediate(() => void this.flushSettles())
  }

  private flushSettles(): Promise<void> {
    const tries = this.settles.splice(0)
    if (tries.length === 0) return this.settling ?? Promise.resolve()
    // One write at a time, in order: a retry's settle must land before a later one of its event.
    const previous = this.settling ?? Promise.resolve()
    const settling = previous
      .then(() => this.options.outbox.settle(this.claimId, tries))
      .catch((err: unknown) => {
        // The leases run out and the events are tried again: duplicates, never a loss.
        this.options.logger.error({ err, events: tries.length }, 'webhook outcomes not recorded')
      })
    this.settling = settling
    return settling
  }
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  return err.message.slice(0, 500)
}
