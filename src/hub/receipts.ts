// Delivery and read receipts (code 205). The node where a message reaches its recipient (a
// live push, a bind's replay) or where the recipient reads it (a join, a message arriving in
// the open conversation) notes a high-water mark for the (sender, recipient) pair; once per
// event-loop turn the marks noted go to the sender's connections that asked for `receipts`,
// here and on the other nodes presence places them on. Mids are store-wide increasing, so the
// largest mid of a pair is the mark. A node never sends a mark at or below one it sent before
// (per pair and kind), and a read mark raises the delivered mark with it (read implies delivered).
import type { ClusterEvent } from '../cluster/broker.js'
import type { Logger } from '../logger.js'
import { Code } from '../protocol/codes.js'
import { encodeFrame, receiptFrame } from '../protocol/frames.js'
import type { MessageStore } from '../store/message-store.js'
import type { FanOut } from './fan-out.js'
import { Feature } from './features.js'
import type { HubMetrics } from './hub-metrics.js'

export type ReceiptKind = 'delivered' | 'read'

/** Marks remembered per node; past this the least recently used go (a forgotten mark only allows a repeat). */
const MAX_MARKS = 100_000
const MID = /^[0-9]{1,20}$/

/** a > b for mids: digit strings without leading zeros. */
const above = (a: string, b: string): boolean => (a.length !== b.length ? a.length > b.length : a > b)

interface Noted {
  kind: ReceiptKind
  from: string
  to: string
  mid: string
}

export interface ReceiptsOptions {
  fanOut: FanOut
  store: MessageStore
  logger: Logger
  /** READ_RECEIPTS: false = read receipts off server-wide (delivered ones stay). */
  readReceipts: boolean
  metrics?: HubMetrics | undefined
}

export class Receipts {
  /** Noted this turn, by kind, sender and recipient: one frame per pair and kind per turn. */
  private noted = new Map<string, Noted>()
  private scheduled = false
  /** The highest mark sent to this node's connections, by kind, sender and recipient. */
  private readonly sent = new Map<string, string>()

  constructor(private readonly options: ReceiptsOptions) {}

  /** `to` got `from`'s message `mid` on a live connection. */
  delivered(from: string, to: string, mid: string): void {
    if (from !== to && this.options.fanOut.mayWant(from, Feature.receipts)) this.note('delivered', from, to, mid)
  }

  /** `to` has read every message from `from` up to `mid`. */
  read(from: string, to: string, mid: string): void {
    if (from !== to && this.options.readReceipts && this.options.fanOut.mayWant(from, Feature.receipts)) this.note('read', from, to, mid)
  }

  /** `reader` opened the conversation with `sender`: everything from them is read, up to the newest. */
  async joined(reader: string, sender: string): Promise<void> {
    if (reader === sender || !this.options.readReceipts) return
    try {
      const marks = await this.options.store.peerMarks(sender, reader)
      if (marks.read !== '0') this.read(sender, reader, marks.read)
    } catch (err) {
      this.options.logger.warn({ err, uid: reader, peer: sender }, 'read receipt after join lost: the store failed')
    }
  }

  /** A receipt another node noted, for this node's connections of its sender. */
  fromNode(event: Extract<ClusterEvent, { kind: 'receipt' }>): void {
    if (!MID.test(event.mid) || (event.receipt !== 'delivered' && event.receipt !== 'read')) return
    this.toLocal(event.receipt, event.from, event.to, event.mid)
  }

  private note(kind: ReceiptKind, from: string, to: string, mid: string): void {
    const key = `${kind}\u0000${from}\u0000${to}`
    const known = this.noted.get(key)
    if (known === undefined) this.noted.set(key, { kind, from, to, mid })
    else if (above(mid, known.mid)) known.mid = mid
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => this.flush())
  }

  private flush(): void {
    const noted = this.noted
    this.noted = new Map()
    this.scheduled = false
    for (const { kind, from, to, mid } of noted.values()) {
      this.toLocal(kind, from, to, mid)
      this.options.fanOut.toOtherNodes(from, Feature.receipts, { kind: 'receipt', receipt: kind, from, to, mid }, true)
    }
  }

  private toLocal(kind: ReceiptKind, from: string, to: string, mid: string): void {
    const key = `${kind}\u0000${from}\u0000${to}`
    const last = this.sent.get(key)
    if (last !== undefined && !above(mid, last)) return
    const sent = this.options.fanOut.toLocal(from, Feature.receipts, () => encodeFrame(receiptFrame(kind, to, from, mid)))
    // Remembered only for uids with a connection here that wants receipts: the map stays small.
    if (sent === 0) return
    this.options.metrics?.frameOut('receipt', Code.RECEIPT, sent)
    this.remember(key, mid)
    if (kind === 'read') {
      const delivered = `delivered\u0000${from}\u0000${to}`
      const known = this.sent.get(delivered)
      if (known === undefined || above(mid, known)) this.remember(delivered, mid)
    }
  }

  private remember(key: string, mid: string): void {
    this.sent.delete(key) // re-inserted: the map's order is the order of last use
    this.sent.set(key, mid)
    if (this.sent.size > MAX_MARKS) this.sent.delete(this.sent.keys().next().value!)
  }
}
