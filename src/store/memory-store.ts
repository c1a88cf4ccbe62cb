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

const pairKey = (a: string, b: string): string => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`)

export class MemoryMessageStore implements MessageStore {
  readonly kind = 'memory'
  private seq = 0
  private readonly byRecipient = new Map<string, Row[]>()
  private readonly byPair = new Map<string, Row[]>()
  private readonly peers = new Map<string, Set<string>>()
  private readonly byRef = new Map<string, Row>()

  async append(input: NewMessage): Promise<AppendResult> {
    const refKey = input.ref === undefined ? undefined : `${input.from}\u0000${input.ref}`
    const existing = refKey === undefined ? undefined : this.byRef.get(refKey)
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
    listFor(this.byPair, pairKey(input.from, input.to)).push(row)
    setFor(this.peers, input.from).add(input.to)
    setFor(this.peers, input.to).add(input.from)
    if (refKey !== undefined) this.byRef.set(refKey, row)
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
    for (const row of this.byPair.get(pairKey(uid, peer)) ?? []) {
      if (row.to === uid && row.from === peer && !row.read) {
        row.read = true
        changed++
      }
    }
    return changed
  }

  async unreadCount(uid: string, peer: string): Promise<number> {
    let unread = 0
    for (const row of this.byPair.get(pairKey(uid, peer)) ?? []) {
      if (row.to === uid && row.from === peer && !row.read) unread++
    }
    return unread
  }

  async conversations(uid: string): Promise<ConversationSummary[]> {
    const out: Array<ConversationSummary & { seq: number }> = []
    for (const peer of this.peers.get(uid) ?? []) {
      const rows = this.byPair.get(pairKey(uid, peer))
      const last = rows?.[rows.length - 1]
      if (!last) continue
      const { read: _read, ...lastMessage } = publicView(last)
      out.push({ peer, unread: await this.unreadCount(uid, peer), lastMessage, seq: last.seq })
    }
    out.sort((a, b) => b.seq - a.seq)
    return out.map(({ seq: _seq, ...summary }) => summary)
  }

  async history(uid: string, peer: string, before: string | null, limit: number): Promise<StoredMessage[]> {
    const rows = this.byPair.get(pairKey(uid, peer)) ?? []
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
    for (const [key, rows] of this.byPair) {
      const kept = rows.filter(keep)
      if (kept.length === 0) {
        this.byPair.delete(key)
        const [a, b] = key.split('\u0000') as [string, string]
        this.peers.get(a)?.delete(b)
        this.peers.get(b)?.delete(a)
      } else this.byPair.set(key, kept)
    }
    for (const [key, row] of this.byRef) if (!keep(row)) this.byRef.delete(key)
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
