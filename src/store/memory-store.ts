// In-process MessageStore: the full semantics with no durability, for tests and demos.
import type {
  AppendResult,
  ConversationSummary,
  MessageStore,
  NewMessage,
  StoredMessage,
} from './message-store.js'

interface Row extends StoredMessage {
  delivered: boolean
  seq: number
}

// Two-level maps rather than one keyed by a joined string: a send then builds no key string
// (and hashes none) — the ids from the parsed frame are looked up as they are.
type TwoLevel<T> = Map<string, Map<string, T>>

function lookup<T>(map: TwoLevel<T>, a: string, b: string): T | undefined {
  return map.get(a)?.get(b)
}

function put<T>(map: TwoLevel<T>, a: string, b: string, value: T): void {
  let inner = map.get(a)
  if (inner === undefined) map.set(a, (inner = new Map()))
  inner.set(b, value)
}

/** The pair's rows, both directions, in the order stored: keyed (lower uid, higher uid). */
function pairRows(map: TwoLevel<Row[]>, a: string, b: string): Row[] | undefined {
  return a < b ? lookup(map, a, b) : lookup(map, b, a)
}

export class MemoryMessageStore implements MessageStore {
  readonly kind = 'memory'
  private seq = 0
  private readonly byRecipient = new Map<string, Row[]>()
  private readonly byPair: TwoLevel<Row[]> = new Map()
  private readonly peers = new Map<string, Set<string>>()
  /** sender -> ref -> row */
  private readonly byRef: TwoLevel<Row> = new Map()

  async append(input: NewMessage): Promise<AppendResult> {
    const existing = input.ref === undefined ? undefined : lookup(this.byRef, input.from, input.ref)
    if (existing) return { message: publicView(existing), duplicate: true }

    const seq = ++this.seq
    const row: Row = {
      mid: String(seq),
      seq,
      from: input.from,
      to: input.to,
      msg: input.msg,
      ts: Date.now(),
      read: input.read,
      delivered: input.delivered,
    }
    listFor(this.byRecipient, input.to).push(row)
    const pair = pairRows(this.byPair, input.from, input.to)
    if (pair !== undefined) pair.push(row)
    else {
      // A new conversation: the only time the peer sets change.
      const [low, high] = input.from < input.to ? [input.from, input.to] : [input.to, input.from]
      put(this.byPair, low, high, [row])
      setFor(this.peers, input.from).add(input.to)
      setFor(this.peers, input.to).add(input.from)
    }
    if (input.ref !== undefined) put(this.byRef, input.from, input.ref, row)
    return { message: publicView(row), duplicate: false }
  }

  async headMid(uid: string): Promise<string> {
    const rows = this.byRecipient.get(uid)
    return rows && rows.length > 0 ? rows[rows.length - 1]!.mid : '0'
  }

  async since(uid: string, afterMid: string, limit: number): Promise<StoredMessage[]> {
    const after = Number(afterMid)
    const rows = this.byRecipient.get(uid) ?? []
    const out: StoredMessage[] = []
    for (const row of rows) {
      if (row.seq <= after) continue
      out.push(publicView(row))
      if (out.length >= limit) break
    }
    return out
  }

  async undelivered(uid: string, limit: number): Promise<StoredMessage[]> {
    const out: StoredMessage[] = []
    for (const row of this.byRecipient.get(uid) ?? []) {
      if (row.delivered) continue
      out.push(publicView(row))
      if (out.length >= limit) break
    }
    return out
  }

  async markDelivered(uid: string, uptoMid: string): Promise<void> {
    const upto = Number(uptoMid)
    for (const row of this.byRecipient.get(uid) ?? []) {
      if (row.seq > upto) break
      row.delivered = true
    }
  }

  async markUndelivered(uid: string, mid: string): Promise<void> {
    const row = this.byRecipient.get(uid)?.find((r) => r.mid === mid)
    if (row !== undefined) row.delivered = false
  }

  async markRead(uid: string, peer: string): Promise<number> {
    let changed = 0
    for (const row of pairRows(this.byPair, uid, peer) ?? []) {
      if (row.to === uid && row.from === peer && !row.read) {
        row.read = true
        changed++
      }
    }
    return changed
  }

  async unreadCount(uid: string, peer: string): Promise<number> {
    let unread = 0
    for (const row of pairRows(this.byPair, uid, peer) ?? []) {
      if (row.to === uid && row.from === peer && !row.read) unread++
    }
    return unread
  }

  async conversations(uid: string): Promise<ConversationSummary[]> {
    const out: Array<ConversationSummary & { seq: number }> = []
    for (const peer of this.peers.get(uid) ?? []) {
      const rows = pairRows(this.byPair, uid, peer)
      const last = rows?.[rows.length - 1]
      if (!last) continue
      const { read: _read, ...lastMessage } = publicView(last)
      out.push({ peer, unread: await this.unreadCount(uid, peer), lastMessage, seq: last.seq })
    }
    out.sort((a, b) => b.seq - a.seq)
    return out.map(({ seq: _seq, ...summary }) => summary)
  }

  async history(uid: string, peer: string, before: string | null, limit: number): Promise<StoredMessage[]> {
    const rows = pairRows(this.byPair, uid, peer) ?? []
    const bound = before === null ? Infinity : Number(before)
    const out: StoredMessage[] = []
    for (let i = rows.length - 1; i >= 0 && out.length < limit; i--) {
      const row = rows[i]!
      if (row.seq < bound) out.push(publicView(row))
    }
    return out
  }

  async purgeBefore(ts: number): Promise<number> {
    let removed = 0
    const keep = (row: Row): boolean => row.ts >= ts
    for (const [key, rows] of this.byRecipient) {
      const kept = rows.filter(keep)
      removed += rows.length - kept.length
      this.byRecipient.set(key, kept)
    }
    for (const [low, byHigh] of this.byPair) {
      for (const [high, rows] of byHigh) {
        const kept = rows.filter(keep)
        if (kept.length > 0) {
          byHigh.set(high, kept)
          continue
        }
        byHigh.delete(high)
        this.peers.get(low)?.delete(high)
        this.peers.get(high)?.delete(low)
      }
      if (byHigh.size === 0) this.byPair.delete(low)
    }
    for (const [sender, byRef] of this.byRef) {
      for (const [ref, row] of byRef) if (!keep(row)) byRef.delete(ref)
      if (byRef.size === 0) this.byRef.delete(sender)
    }
    return removed
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}

function publicView(row: Row): StoredMessage {
  return { mid: row.mid, from: row.from, to: row.to, msg: row.msg, ts: row.ts, read: row.read }
}

function listFor<T>(map: Map<string, T[]>, key: string): T[] {
  let list = map.get(key)
  if (!list) map.set(key, (list = []))
  return list
}

function setFor(map: Map<string, Set<string>>, key: string): Set<string> {
  let set = map.get(key)
  if (!set) map.set(key, (set = new Set()))
  return set
}
