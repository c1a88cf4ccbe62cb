// The memory store's outbox: the events in process, gone with it, as its messages are.
// Due events sit in a heap by due time, so a claim takes the first ones without looking at
// the others (a receiver down for hours leaves many waiting for their next try).
import { randomBytes } from 'node:crypto'
import { eventId, midOfEvent, OFFLINE_EVENT, type EventMessage, type FailedEvent, type Outbox, type OutboxEvent, type RetryResult, type SettledTry } from './outbox.js'

const PENDING = 0
const SENT = 1
const FAILED = 2

interface MemoryEvent {
  /** The message's mid, as a number: the heap's tie-break, the failed list's order. */
  seq: number
  id: string
  ts: number
  /** The message without its text, read from the store when the event is (the store keeps texts off the heap). */
  message: Omit<EventMessage, 'msg'>
  state: number
  attempts: number
  dueAt: number
  /** The claim it is leased to, or null. */
  claim: string | null
  leaseUntil: number
  lastError: string
  lastAttemptAt: number
}

export class MemoryOutbox implements Outbox {
  /** A new one per process: the memory store starts empty, its mids from 1 again. */
  private readonly tag = randomBytes(8).toString('hex')
  /** By mid. */
  private readonly events = new Map<string, MemoryEvent>()
  private readonly due = new DueHeap()
  private readonly leased = new Set<MemoryEvent>()
  private pending = 0

  /** `stored`: the message with this mid, as the store holds it, or undefined when gone. */
  constructor(private readonly stored: (mid: string) => EventMessage | undefined) {}

  /** Called by the store's append, which stores the message in the same step. */
  written(message: EventMessage, ts = message.ts): void {
    if (this.events.has(message.mid)) return // one event per message
    const { mid, from, to } = message
    const event: MemoryEvent = {
      seq: Number(message.mid),
      id: eventId(this.tag, message.mid),
      ts,
      message: { mid, from, to, ts: message.ts },
      state: PENDING,
      attempts: 0,
      dueAt: ts,
      claim: null,
      leaseUntil: 0,
      lastError: '',
      lastAttemptAt: 0,
    }
    this.events.set(message.mid, event)
    this.due.push(event)
    this.pending++
  }

  /** The events of the messages `gone` picks out go with them (an erase, a purge). */
  forget(gone: (message: Omit<EventMessage, 'msg'>) => boolean): void {
    for (const event of this.events.values()) {
      if (!gone(event.message)) continue
      this.events.delete(event.message.mid)
      this.leased.delete(event)
      if (event.state === PENDING) this.pending--
      event.state = -1 // the heap skips it
    }
  }

  async add(message: EventMessage): Promise<void> {
    const stored = this.stored(message.mid)
    if (stored !== undefined) this.written(stored, Date.now())
  }

  async claim(claim: string, limit: number, now: number, leaseUntil: number): Promise<OutboxEvent[]> {
    // A lease that ran out: its claimer is gone, the event is due again.
    for (const event of this.leased) {
      if (event.leaseUntil > now) continue
      this.leased.delete(event)
      event.claim = null
      this.due.push(event)
    }
    const out: OutboxEvent[] = []
    while (out.length < limit) {
      const event = this.due.takeDue(now)
      if (event === undefined) break
      if (event.state !== PENDING || event.claim !== null) continue // erased, or a stale entry
      event.claim = claim
      event.leaseUntil = leaseUntil
      this.leased.add(event)
      out.push(this.view(event))
    }
    return out
  }

  async nextDue(): Promise<number | null> {
    return this.due.firstDue()
  }

  async settle(claim: string, tries: readonly SettledTry[]): Promise<void> {
    for (const outcome of tries) this.settleOne(claim, outcome)
  }

  private settleOne(claim: string, outcome: SettledTry): void {
    const event = this.find(outcome.id)
    if (event === undefined || event.claim !== claim || event.state !== PENDING) return
    this.leased.delete(event)
    event.claim = null
    event.attempts++
    event.lastAttemptAt = outcome.at
    if (outcome.kind === 'retry') {
      event.lastError = outcome.error
      event.dueAt = outcome.retryAt
      this.due.push(event)
      return
    }
    this.pending--
    event.state = outcome.kind === 'sent' ? SENT : FAILED
    event.lastError = outcome.kind === 'failed' ? outcome.error : ''
  }

  async release(claim: string): Promise<void> {
    for (const event of this.leased) {
      if (event.claim !== claim) continue
      this.leased.delete(event)
      event.claim = null
      this.due.push(event)
    }
  }

  async pendingCount(): Promise<number> {
    return this.pending
  }

  async failed(before: string | null, limit: number): Promise<FailedEvent[]> {
    const cursor = before === null ? null : midOfEvent(this.tag, before)
    const bound = before === null ? Infinity : cursor === null ? 0 : Number(cursor)
    const out: FailedEvent[] = []
    const all = [...this.events.values()].sort((a, b) => a.seq - b.seq)
    for (let i = all.length - 1; i >= 0 && out.length < limit; i--) {
      const event = all[i]!
      if (event.state === FAILED && event.seq < bound) out.push({ ...this.view(event), lastError: event.lastError, lastAttemptAt: event.lastAttemptAt })
    }
    return out
  }

  async retry(id: string, now: number): Promise<RetryResult> {
    const event = this.find(id)
    if (event === undefined) return 'unknown'
    if (event.state !== FAILED) return 'not-failed'
    event.state = PENDING
    event.attempts = 0
    event.dueAt = now
    this.pending++
    this.due.push(event)
    return 'requeued'
  }

  private view(event: MemoryEvent): OutboxEvent {
    const message = { ...event.message, msg: this.stored(event.message.mid)?.msg ?? '' }
    return { id: event.id, type: OFFLINE_EVENT, ts: event.ts, attempts: event.attempts, message }
  }

  private find(id: string): MemoryEvent | undefined {
    const mid = midOfEvent(this.tag, id)
    return mid === null ? undefined : this.events.get(mid)
  }
}

/**
 * A binary min-heap of events by (due time, seq). An event is in it at most once: taken off
 * when claimed, pushed again for its next try. An erased one stays until it comes up.
 */
class DueHeap {
  private readonly items: Array<{ event: MemoryEvent; dueAt: number }> = []

  push(event: MemoryEvent): void {
    const items = this.items
    items.push({ event, dueAt: event.dueAt })
    for (let i = items.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1
      if (!before(items[i]!, items[parent]!)) break
      ;[items[i], items[parent]] = [items[parent]!, items[i]!]
      i = parent
    }
  }

  /** When the first pending event in the heap comes due, or null. */
  firstDue(): number | null {
    // Erased events leave their entries: drop them here, so they never set a timer.
    while (this.items.length > 0 && this.items[0]!.event.state !== PENDING) this.pop()
    return this.items[0]?.dueAt ?? null
  }

  /** The first event, if due by `now`, taken off the heap. */
  takeDue(now: number): MemoryEvent | undefined {
    const first = this.items[0]
    if (first === undefined || first.dueAt > now) return undefined
    this.pop()
    return first.event
  }

  private pop(): void {
    const items = this.items
    const last = items.pop()!
    if (items.length === 0) return
    items[0] = last
    for (let i = 0; ; ) {
      const left = 2 * i + 1
      const right = left + 1
      let least = i
      if (left < items.length && before(items[left]!, items[least]!)) least = left
      if (right < items.length && before(items[right]!, items[least]!)) least = right
      if (least === i) return
      ;[items[i], items[least]] = [items[least]!, items[i]!]
      i = least
    }
  }
}

const before = (a: { event: MemoryEvent; dueAt: number }, b: { event: MemoryEvent; dueAt: number }): boolean =>
  a.dueAt < b.dueAt || (a.dueAt === b.dueAt && a.event.seq < b.event.seq)
