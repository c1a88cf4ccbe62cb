// The memory store's refs: which message, if any, a (sender, recipient, ref) names, so a resend
// is answered with the stored message. Kept as strings in Maps, every ref survived the young
// generation and was copied by the scavenges after its arrival, then kept in the old one, as
// the texts were before text-arena.ts: with a ref on every send (the typed client, the bench),
// the largest part of what duet-memory still kept on its heap per message. Here a ref is UTF-8
// in a TextArena, and the Map holds small integers only: a hash of the triple and the newest
// seq with that hash, older ones chained through `older`. The incoming ref string dies young.
// The Map is split by the hash's low bits: one Map of every ref stalled the event loop for tens
// of milliseconds each time it grew (a rehash of all its entries at once).
import { Column } from './column.js'
import type { MessageColumns } from './memory-columns.js'
import { TextArena } from './text-arena.js'

/** Maps the hashes are spread over (by their low bits): a rehash moves 1/SHARDS of the refs. */
const SHARDS = 256
/** `older` of a message with no ref in the index. */
const NO_REF = -1
/** `older` of the last message of a chain. */
const END = 0

/**
 * FNV-1a over the three strings' UTF-16 units with a NUL after each (no storable string holds
 * one, so ("ab", "c") and ("a", "bc") differ), cut to 30 bits so the Map's keys are small
 * integers, not heap numbers. Collisions only lengthen a chain: find() compares the triple.
 */
export function refHash(sender: string, recipient: string, ref: string): number {
  return fnv(fnv(fnv(0x811c9dc5, sender), recipient), ref) & 0x3fffffff
}

function fnv(hash: number, text: string): number {
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193)
  return Math.imul(hash, 0x01000193) // the NUL
}

export class RefIndex {
  /** Each message's ref by seq - 1, '' for none. */
  private readonly refs = new TextArena()
  /** hash -> the newest seq whose triple has it, in the Map of the hash's low bits. */
  private readonly newest = Array.from({ length: SHARDS }, () => new Map<number, number>())
  /** By seq - 1: the next older seq with the same hash, END, or NO_REF. */
  private readonly older = new Column(Int32Array)

  /** @param messages the store's columns, which hold each message's sender and recipient. */
  constructor(private readonly messages: Pick<MessageColumns, 'sender' | 'recipient'>) {}

  /** The seq of the message from `sender` to `recipient` with this ref, if one is stored. */
  find(sender: string, recipient: string, ref: string): number | undefined {
    const hash = refHash(sender, recipient, ref)
    for (let seq = this.newest[hash % SHARDS]!.get(hash) ?? END; seq !== END; seq = this.older.get(seq - 1)) {
      const i = seq - 1
      if (this.messages.sender(i) === sender && this.messages.recipient(i) === recipient && this.refs.get(i) === ref) return seq
    }
    return undefined
  }

  /** Notes message `seq`, the next one (its sender and recipient already in the columns). */
  add(seq: number, ref: string | undefined): void {
    if (this.refs.put(ref ?? '') !== seq - 1) throw new Error(`ref index out of step at seq ${seq}`)
    if (ref === undefined) {
      this.older.push(NO_REF)
      return
    }
    const hash = refHash(this.messages.sender(seq - 1), this.messages.recipient(seq - 1), ref)
    const shard = this.newest[hash % SHARDS]!
    this.older.push(shard.get(hash) ?? END)
    shard.set(hash, seq)
  }

  /** Message `seq` is gone (erased or purged): its ref no longer names it, and its bytes are zeroed. */
  remove(seq: number): void {
    const i = seq - 1
    const next = this.older.get(i)
    if (next === NO_REF) return
    const hash = refHash(this.messages.sender(i), this.messages.recipient(i), this.refs.get(i))
    const shard = this.newest[hash % SHARDS]!
    if (shard.get(hash) === seq) {
      if (next === END) shard.delete(hash)
      else shard.set(hash, next)
    } else {
      let before = shard.get(hash)!
      while (this.older.get(before - 1) !== seq) before = this.older.get(before - 1)
      this.older.set(before - 1, next)
    }
    this.older.set(i, NO_REF)
    this.refs.erase(i)
  }
}
