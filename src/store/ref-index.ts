// The memory store's refs: which message, if any, a (sender, recipient, ref) names, so a resend
// is answered with the stored message. Kept as strings in Maps, every ref survived the young
// generation and was copied by the scavenges after its arrival, then kept in the old one, as
// the texts were before text-arena.ts. Here nothing of a ref is on the JS heap: its UTF-8 is in
// a TextArena, and a hash table of typed arrays chains the seqs whose triples hash to the same
// bucket (as Maps of small integers, the refs were still most of the store's heap per
// message: 32 of 55 bytes, bench/README.md). The table is split in shards by the hash's low
// bits, each growing on its own: one table of every ref would stall the event loop each time
// it grew, relinking every entry at once (a Map: 29 ms at 131 072 entries here, 56 at 262 144).
import { Column } from './column.js'
import type { MessageColumns } from './memory-columns.js'
import { TextArena } from './text-arena.js'

const SHARD_BITS = 8
const SHARDS = 1 << SHARD_BITS
/** Buckets of a new shard; a shard doubles when it holds as many refs as buckets. */
const MIN_BUCKETS = 16
/** The hash of a message with no ref (hashes are 30-bit, never negative). */
const NO_REF = -1
/** The end of a chain, and an empty bucket (seqs start at 1). */
const END = 0

/**
 * FNV-1a over the three strings' UTF-16 units with a NUL after each (no storable string holds
 * one, so ("ab", "c") and ("a", "bc") differ), cut to 30 bits. Collisions only lengthen a
 * chain: find() compares the triple.
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
  /** By seq - 1: the triple's hash, or NO_REF. */
  private readonly hashOf = new Column(Int32Array)
  /** By seq - 1: the next seq of the same bucket, or END. */
  private readonly next = new Column(Int32Array)
  /** Per shard (the hash's low bits): bucket (its next bits) -> the first seq of its chain. */
  private readonly shards = Array.from({ length: SHARDS }, () => new Int32Array(MIN_BUCKETS))
  /** Refs per shard. */
  private readonly counts = new Int32Array(SHARDS)

  /** @param messages the store's columns, which hold each message's sender and recipient. */
  constructor(private readonly messages: Pick<MessageColumns, 'sender' | 'recipient'>) {}

  /** The seq of the message from `sender` to `recipient` with this ref, if one is stored; `hash` is refHash() of the three. */
  find(hash: number, sender: string, recipient: string, ref: string): number | undefined {
    const buckets = this.shards[hash & (SHARDS - 1)]!
    for (let seq = buckets[bucketOf(hash, buckets)]!; seq !== END; seq = this.next.get(seq - 1)) {
      const i = seq - 1
      if (this.hashOf.get(i) !== hash) continue
      if (this.messages.sender(i) === sender && this.messages.recipient(i) === recipient && this.refs.get(i) === ref) return seq
    }
    return undefined
  }

  /** Notes message `seq`, the next one; `hash` is refHash() of its sender, recipient and ref (unused without a ref). */
  add(seq: number, ref: string | undefined, hash: number): void {
    if (this.refs.put(ref ?? '') !== seq - 1) throw new Error(`ref index out of step at seq ${seq}`)
    if (ref === undefined) {
      this.hashOf.push(NO_REF)
      this.next.push(END)
      return
    }
    const shard = hash & (SHARDS - 1)
    if (this.counts[shard]! >= this.shards[shard]!.length) this.grow(shard)
    const buckets = this.shards[shard]!
    const bucket = bucketOf(hash, buckets)
    this.hashOf.push(hash)
    this.next.push(buckets[bucket]!)
    buckets[bucket] = seq
    this.counts[shard]!++
  }

  /** Message `seq` is gone (erased or purged): its ref no longer names it, and its bytes are zeroed. */
  remove(seq: number): void {
    const i = seq - 1
    const hash = this.hashOf.get(i)
    if (hash === NO_REF) return
    const shard = hash & (SHARDS - 1)
    const buckets = this.shards[shard]!
    const bucket = bucketOf(hash, buckets)
    if (buckets[bucket] === seq) buckets[bucket] = this.next.get(i)
    else {
      let before = buckets[bucket]!
      while (this.next.get(before - 1) !== seq) before = this.next.get(before - 1)
      this.next.set(before - 1, this.next.get(i))
    }
    this.hashOf.set(i, NO_REF)
    this.counts[shard]!--
    this.refs.erase(i)
  }

  /** Doubles a shard's buckets, relinking its chains (a 256th of the refs). */
  private grow(shard: number): void {
    const old = this.shards[shard]!
    const buckets = new Int32Array(old.length * 2)
    for (const first of old) {
      for (let seq = first, after = 0; seq !== END; seq = after) {
        after = this.next.get(seq - 1)
        const bucket = bucketOf(this.hashOf.get(seq - 1), buckets)
        this.next.set(seq - 1, buckets[bucket]!)
        buckets[bucket] = seq
      }
    }
    this.shards[shard] = buckets
  }
}

/** A hash's bucket in a shard: the bits above the shard's. */
function bucketOf(hash: number, buckets: Int32Array): number {
  return (hash >>> SHARD_BITS) & (buckets.length - 1)
}
