// In-process MessageStore: the full semantics with no durability, for tests and demos.
// Laid out for the garbage collector, which otherwise dominates a server that keeps every
// message on its heap: a message is a slot in columns off the heap (memory-columns.ts), its
// text and its ref in arenas (text-arena.ts, ref-index.ts), not an object with its own id
// string. Indexes hold seqs (small integers), never objects. The mid is the seq.
import type { StoredMessage } from '../protocol/message.js'
import { preview } from '../protocol/preview.js'
import type { AppendResult, ConversationSummary, MessageStore, NewMessage, PeerMarks } from './message-store.js'
import { firstAfter, listFor, lookup, NONE, put, RecentConversations, type TwoLevel } from './memory-index.js'
import { MemoryOutbox } from './memory-outbox.js'
import { DELIVERED, MessageColumns, READ } from './memory-columns.js'
import { refHash, RefIndex } from './ref-index.js'
import { TextArena } from './text-arena.js'

export class MemoryMessageStore implements MessageStore {
  readonly kind = 'memory'
  readonly outbox = new MemoryOutbox((mid) => this.eventMessage(mid))
  private seq = 0
  /** Sender, recipient, time and flags, by seq - 1. */
  private readonly columns = new MessageColumns()
  /** The texts, off the heap (text-arena.ts): a message's index there is its seq - 1. */
  private readonly text = new TextArena()
  /** Seqs to each recipient, ascending. */
  private readonly byRecipient = new Map<string, number[]>()
  /** Seqs of each pair, both directions, ascending: keyed (lower uid, higher uid). */
  private readonly byPair: TwoLevel<number[]> = new Map()
  /** Each user's conversations by last activity (memory-index.ts). */
  private readonly recent = new RecentConversations()
  /** owner -> peer -> seq: every message from peer to owner up to it is read (unread ones come after). */
  private readonly readMarks: TwoLevel<number> = new Map()
  /** (sender, recipient, ref) -> seq, the refs off the heap as the texts (ref-index.ts). */
  private readonly refs = new RefIndex(this.columns)

  async append(input: NewMessage): Promise<AppendResult> {
    const { ref } = input
    const hash = ref === undefined ? 0 : refHash(input.from, input.to, ref) // once, for find and add
    const existing = ref === undefined ? undefined : this.refs.find(hash, input.from, input.to, ref)
    if (existing !== undefined) return { message: this.view(existing), duplicate: true }

    const seq = ++this.seq
    const ts = Date.now()
    this.columns.push(input.from, input.to, ts, (input.read ? READ : 0) | (input.delivered ? DELIVERED : 0))
    const from = this.columns.sender(seq - 1)
    const to = this.columns.recipient(seq - 1)
    this.text.put(input.msg)
    this.refs.add(seq, ref, hash)
    listFor(this.byRecipient, to).push(seq)
    const low = from < to ? from : to
    const high = from < to ? to : from
    const pair = lookup(this.byPair, low, high)
    const previous = pair?.[pair.length - 1]
    if (pair !== undefined) pair.push(seq)
    else put(this.byPair, low, high, [seq])
    this.recent.moved(from, previous, seq)
    if (to !== from) this.recent.moved(to, previous, seq)
    // From the input, not read back from the arena: the same text, without decoding it.
    const message: StoredMessage = { mid: String(seq), from, to, msg: input.msg, ts, read: input.read }
    if (input.offlineEvent === true) this.outbox.written({ mid: message.mid, from, to, msg: message.msg, ts: message.ts })
    return { message, duplicate: false }
  }

  async headMid(uid: string): Promise<string> {
    const seqs = this.byRecipient.get(uid)
    return seqs !== undefined && seqs.length > 0 ? String(seqs[seqs.length - 1]) : '0'
  }

  async since(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]> {
    const seqs = this.byRecipient.get(uid) ?? NONE
    const out: StoredMessage[] = []
    for (let i = firstAfter(seqs, Number(afterMid)); i < seqs.length && out.length < limit; i++) out.push(this.view(seqs[i]!))
    return out
  }

  async sentSince(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]> {
    const after = Number(afterMid)
    const seqs: number[] = []
    for (const peer of this.peersAfter(uid, after)) {
      const pair = this.pairSeqs(uid, peer)
      let taken = 0
      for (let j = firstAfter(pair, after); j < pair.length && taken < limit; j++) {
        if (this.columns.sender(pair[j]! - 1) !== uid) continue
        seqs.push(pair[j]!)
        taken++
      }
    }
    return seqs.sort((a, b) => a - b).slice(0, limit).map((seq) => this.view(seq))
  }

  async sentHeadMid(uid: string): Promise<string> {
    let head = 0
    for (const peer of this.peersAfter(uid, 0)) {
      const pair = this.pairSeqs(uid, peer)
      for (let j = pair.length - 1; j >= 0 && pair[j]! > head; j--) {
        if (this.columns.sender(pair[j]! - 1) === uid) {
          head = pair[j]!
          break
        }
      }
    }
    return String(head)
  }

  /** The peers (not `uid` itself) of `uid`'s conversations with a message above `after`. */
  private peersAfter(uid: string, after: number): string[] {
    const order = this.recent.of(uid)
    const peers: string[] = []
    for (let i = order.length - 1; i >= 0 && order[i]! > after; i--) {
      const seq = order[i]!
      const peer = this.peerIn(seq, uid)
      if (peer !== uid) peers.push(peer)
    }
    return peers
  }

  async undelivered(uid: string, limit: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = []
    for (const seq of this.byRecipient.get(uid) ?? NONE) {
      if (this.columns.flags(seq - 1) & DELIVERED) continue
      out.push(this.view(seq))
      if (out.length >= limit) break
    }
    return out
  }

  async markDelivered(uid: string, mids: readonly string[]): Promise<void> {
    for (const mid of mids) this.flag(uid, mid, true)
  }

  async setDelivered(uid: string, mid: string, delivered: boolean): Promise<void> {
    this.flag(uid, mid, delivered)
  }

  /** Sets the delivered flag of `mid` if it is a message to `uid`. */
  private flag(uid: string, mid: string, delivered: boolean): void {
    const seqs = this.byRecipient.get(uid) ?? NONE
    const target = Number(mid)
    if (seqs[firstAfter(seqs, target - 1)] !== target) return
    this.columns.setFlag(target - 1, DELIVERED, delivered)
  }

  async markRead(uid: string, peer: string): Promise<number> {
    let changed = 0
    for (const seq of this.unreadSeqs(uid, peer)) {
      this.columns.setFlag(seq - 1, READ, true)
      changed++
    }
    const seqs = this.pairSeqs(uid, peer)
    if (seqs.length > 0) put(this.readMarks, uid, peer, seqs[seqs.length - 1]!)
    return changed
  }

  async unreadCount(uid: string, peer: string): Promise<number> {
    return this.unreadSeqs(uid, peer).length
  }

  async peerMarks(uid: string, peer: string): Promise<PeerMarks> {
    return this.marksOf(uid, peer)
  }

  async conversations(uid: string, before: string | null, limit: number): Promise<ConversationSummary[]> {
    const order = this.recent.of(uid)
    const out: ConversationSummary[] = []
    // Back from the newest seq below `before`.
    const start = before === null ? order.length : firstAfter(order, Number(before) - 1)
    for (let i = start - 1; i >= 0 && out.length < limit; i--) {
      const { read: _read, msg, ...last } = this.view(order[i]!)
      const peer = last.from === uid ? last.to : last.from
      const marks = this.marksOf(uid, peer)
      out.push({
        peer,
        unread: this.unreadSeqs(uid, peer).length,
        peerDelivered: marks.delivered,
        peerRead: marks.read,
        lastMessage: { ...last, ...preview(msg) },
      })
    }
    return out
  }

  async history(uid: string, peer: string, before: string | null, limit: number): Promise<StoredMessage[]> {
    const seqs = this.pairSeqs(uid, peer)
    const bound = before === null ? Infinity : Number(before)
    const out: StoredMessage[] = []
    for (let i = seqs.length - 1; i >= 0 && out.length < limit; i--) {
      if (seqs[i]! < bound) out.push(this.view(seqs[i]!))
    }
    return out
  }

  async userMessages(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]> {
    const after = Number(afterMid)
    // Each conversation's first `limit` after the cursor; the page is the first `limit` of all.
    const seqs: number[] = []
    for (const peer of this.peersOf(uid)) {
      const pair = this.pairSeqs(uid, peer)
      const start = firstAfter(pair, after)
      for (let i = start; i < pair.length && i < start + limit; i++) seqs.push(pair[i]!)
    }
    return seqs
      .sort((a, b) => a - b)
      .slice(0, limit)
      .map((seq) => this.view(seq))
  }

  /** At once: the memory store has no other work to let through, and no disk to wait for. */
  async eraseUser(uid: string): Promise<number> {
    let erased = 0
    for (const peer of this.peersOf(uid)) {
      const low = uid < peer ? uid : peer
      const high = uid < peer ? peer : uid
      const pair = lookup(this.byPair, low, high) ?? NONE
      for (const seq of pair) this.forget(seq)
      erased += pair.length
      this.byPair.get(low)?.delete(high)
      if (this.byPair.get(low)?.size === 0) this.byPair.delete(low)
      if (peer === uid) continue
      // The peer's side: the messages from uid, the conversation, its read mark.
      const received = this.byRecipient.get(peer)
      if (received !== undefined) {
        const kept = received.filter((seq) => this.columns.sender(seq - 1) !== uid)
        if (kept.length > 0) this.byRecipient.set(peer, kept)
        else this.byRecipient.delete(peer)
      }
      this.recent.remove(peer, pair[pair.length - 1]!)
      this.readMarks.get(peer)?.delete(uid)
    }
    this.outbox.forget((message) => message.from === uid || message.to === uid)
    this.byRecipient.delete(uid)
    this.recent.forget(uid)
    this.readMarks.delete(uid)
    return erased
  }

  /** One pass with no await: there is nothing between chunks to stop at. */
  async purgeBefore(ts: number): Promise<number> {
    let removed = 0
    const keep = (seq: number): boolean => this.columns.ts(seq - 1) >= ts
    this.outbox.forget((message) => message.ts < ts)
    for (const [uid, seqs] of this.byRecipient) {
      const kept = seqs.filter(keep)
      for (const seq of seqs) if (!keep(seq)) this.forget(seq)
      removed += seqs.length - kept.length
      this.byRecipient.set(uid, kept)
    }
    for (const [low, byHigh] of this.byPair) {
      for (const [high, seqs] of byHigh) {
        const kept = seqs.filter(keep)
        if (kept.length > 0) {
          byHigh.set(high, kept)
          continue
        }
        byHigh.delete(high)
        this.readMarks.get(low)?.delete(high)
        this.readMarks.get(high)?.delete(low)
      }
      if (byHigh.size === 0) this.byPair.delete(low)
    }
    this.recent.rebuild(this.byPair)
    return removed
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  /** The message with this mid while it is stored (erased and purged ones leave the recipient's list). */
  private eventMessage(mid: string): { mid: string; from: string; to: string; msg: string; ts: number } | undefined {
    const seq = Number(mid)
    if (!(seq >= 1 && seq <= this.seq)) return undefined
    const seqs = this.byRecipient.get(this.columns.recipient(seq - 1)) ?? NONE
    if (seqs[firstAfter(seqs, seq - 1)] !== seq) return undefined
    const { read: _read, ...message } = this.view(seq)
    return message
  }

  /** The slot of a message erased or purged stays; its text and its ref go. */
  private forget(seq: number): void {
    this.text.erase(seq - 1)
    this.refs.remove(seq)
  }

  private view(seq: number): StoredMessage {
    const i = seq - 1
    const { columns } = this
    return { mid: String(seq), from: columns.sender(i), to: columns.recipient(i), msg: this.text.get(i), ts: columns.ts(i), read: (columns.flags(i) & READ) !== 0 }
  }

  /** The other party of message `seq`, to or from `uid`. */
  private peerIn(seq: number, uid: string): string {
    const sender = this.columns.sender(seq - 1)
    return sender === uid ? this.columns.recipient(seq - 1) : sender
  }

  /** The peers `uid` has a conversation with (themselves too, for messages to self). */
  private peersOf(uid: string): string[] {
    return this.recent.of(uid).map((seq) => this.peerIn(seq, uid))
  }

  private pairSeqs(a: string, b: string): readonly number[] {
    return (a < b ? lookup(this.byPair, a, b) : lookup(this.byPair, b, a)) ?? NONE
  }

  /** Seqs of the messages from `peer` to `uid` not yet read: only those after the read mark can be. */
  private unreadSeqs(uid: string, peer: string): number[] {
    const seqs = this.pairSeqs(uid, peer)
    const out: number[] = []
    for (let j = firstAfter(seqs, lookup(this.readMarks, uid, peer) ?? 0); j < seqs.length; j++) {
      const i = seqs[j]! - 1
      if (this.columns.recipient(i) === uid && this.columns.sender(i) === peer && (this.columns.flags(i) & READ) === 0) out.push(seqs[j]!)
    }
    return out
  }

  /**
   * Newest first down the pair, to the first message from `uid` to `peer` that is read: one
   * at or below the peer's read mark is (markRead read every one up to it).
   */
  private marksOf(uid: string, peer: string): PeerMarks {
    const seqs = this.pairSeqs(uid, peer)
    const mark = lookup(this.readMarks, peer, uid) ?? 0
    let delivered = 0
    let read = 0
    for (let j = seqs.length - 1; j >= 0; j--) {
      const seq = seqs[j]!
      if (this.columns.sender(seq - 1) !== uid || this.columns.recipient(seq - 1) !== peer) continue
      const flags = this.columns.flags(seq - 1)
      if (seq <= mark || (flags & READ) !== 0) {
        read = seq
        if (delivered === 0) delivered = seq
        break
      }
      if (delivered === 0 && (flags & DELIVERED) !== 0) delivered = seq
    }
    return { delivered: String(delivered), read: String(read) }
  }
}
