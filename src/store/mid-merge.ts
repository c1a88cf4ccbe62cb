// The merge under the SQLite store's export and erase: a user's mids in ascending order, from
// every conversation's two directions, each a stream read from the pair index a few rows at a
// time. A binary heap keyed on each stream's next mid picks the smallest, so a page costs its
// rows times log(streams). A scan of every stream for each row cost its rows times the
// streams: an export of a user with 10 000 partners held the event loop for 4–6 s.

export interface MidStream {
  /** The next mid of this stream. */
  head: number
  /** Mids read after an earlier head, and the index of the next one to take. */
  rows: readonly number[]
  next: number
}

/**
 * The first `limit` mids of `streams` (each one's `head` its smallest, the array sorted by
 * head: a sorted array is a heap), in ascending order. `more(stream)` reads the mids after
 * its head; none means the stream is done. The streams are consumed.
 */
export function mergeMids<S extends MidStream>(streams: S[], more: (stream: S) => readonly number[], limit: number): number[] {
  const heap = streams
  const mids: number[] = []
  while (mids.length < limit && heap.length > 0) {
    const stream = heap[0]!
    mids.push(stream.head)
    if (stream.next === stream.rows.length) {
      stream.rows = more(stream)
      stream.next = 0
    }
    if (stream.next < stream.rows.length) stream.head = stream.rows[stream.next++]!
    else {
      const last = heap.pop()!
      if (heap.length === 0) break
      heap[0] = last
    }
    siftDown(heap)
  }
  return mids
}

/** Moves the root down to its place. */
function siftDown(heap: MidStream[]): void {
  const n = heap.length
  let at = 0
  for (;;) {
    const left = 2 * at + 1
    if (left >= n) return
    const right = left + 1
    const child = right < n && heap[right]!.head < heap[left]!.head ? right : left
    if (heap[at]!.head <= heap[child]!.head) return
    const swap = heap[at]!
    heap[at] = heap[child]!
    heap[child] = swap
    at = child
  }
}
