// The memory store's index shapes: two-level maps, ascending lists of seqs searched by
// bisection, and each user's conversations ordered by last activity.

// Two-level maps rather than one keyed by a joined string: a send then builds no key string
// (and hashes none); the ids from the parsed frame are looked up as they are.
export type TwoLevel<T> = Map<string, Map<string, T>>

export function lookup<T>(map: TwoLevel<T>, a: string, b: string): T | undefined {
  return map.get(a)?.get(b)
}

export function put<T>(map: TwoLevel<T>, a: string, b: string, value: T): void {
  let inner = map.get(a)
  if (inner === undefined) map.set(a, (inner = new Map()))
  inner.set(b, value)
}

/** Index of the first seq in ascending `seqs` greater than `after`. */
export function firstAfter(seqs: readonly number[], after: number): number {
  let lo = 0
  let hi = seqs.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (seqs[mid]! <= after) lo = mid + 1
    else hi = mid
  }
  return lo
}

export const NONE: readonly number[] = []

export function listFor<T>(map: Map<string, T[]>, key: string): T[] {
  let list = map.get(key)
  if (!list) map.set(key, (list = []))
  return list
}

/**
 * Each user's conversations by last activity: the newest seq of each, ascending. A message
 * moves its conversation to the end, usually from the end (a chat going on: one pop), so a
 * page of the list is a binary search and `limit` steps back, however many there are.
 */
export class RecentConversations {
  private readonly byOwner = new Map<string, number[]>()

  /** `owner`'s conversations, by their newest seq, ascending. */
  of(owner: string): readonly number[] {
    return this.byOwner.get(owner) ?? NONE
  }

  /** `owner`'s conversation whose newest seq was `previous` (undefined: a new one) now has `seq`. */
  moved(owner: string, previous: number | undefined, seq: number): void {
    const order = listFor(this.byOwner, owner)
    if (previous !== undefined) {
      if (order[order.length - 1] === previous) order.pop()
      else order.splice(firstAfter(order, previous - 1), 1)
    }
    order.push(seq)
  }

  /** `owner`'s conversation whose newest seq is `newest` is gone. */
  remove(owner: string, newest: number): void {
    const order = this.byOwner.get(owner)
    if (order === undefined) return
    order.splice(firstAfter(order, newest - 1), 1)
    if (order.length === 0) this.byOwner.delete(owner)
  }

  forget(owner: string): void {
    this.byOwner.delete(owner)
  }

  /** After a purge: every conversation's newest seq, from the pairs that are left. */
  rebuild(byPair: TwoLevel<number[]>): void {
    this.byOwner.clear()
    for (const [low, byHigh] of byPair) {
      for (const [high, seqs] of byHigh) {
        const newest = seqs[seqs.length - 1]!
        listFor(this.byOwner, low).push(newest)
        if (high !== low) listFor(this.byOwner, high).push(newest)
      }
    }
    for (const order of this.byOwner.values()) order.sort((a, b) => a - b)
  }
}
