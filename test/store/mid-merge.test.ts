// The export's and the erase's merge (mid-merge.ts) against a plain sort: many streams of
// interleaved mids, read a few at a time, come out once each, in ascending order, a page at a
// time.
import t from 'tap'
import { mergeMids, type MidStream } from '../../src/store/mid-merge.js'

/** `count` mids dealt at random to `streams` streams, and the streams opened after a mid. */
function setup(count: number, streams: number): { all: number[]; open: (after: number) => Array<MidStream & { mids: number[] }> } {
  const owned: number[][] = Array.from({ length: streams }, () => [])
  let seed = 7
  const random = (): number => (seed = (seed * 48271) % 2147483647) / 2147483647
  for (let mid = 1; mid <= count; mid++) owned[Math.floor(random() * streams)]!.push(mid * 3)
  const all = owned.flat().sort((a, b) => a - b)
  const open = (after: number) =>
    owned
      .map((mids) => mids.filter((m) => m > after))
      .filter((mids) => mids.length > 0)
      .map((mids) => ({ mids, head: mids[0]!, rows: [] as readonly number[], next: 0 }))
      .sort((a, b) => a.head - b.head)
  return { all, open }
}

t.test('pages of the merge are the sorted mids, each once, whatever the interleaving', async (t) => {
  for (const [count, streams, read, limit] of [
    [2000, 1, 64, 500],
    [2000, 7, 3, 500],
    [5000, 900, 64, 500],
    [300, 300, 1, 7],
  ] as const) {
    const { all, open } = setup(count, streams)
    const merged: number[] = []
    for (let after = 0; ; ) {
      const page = mergeMids(open(after), (s) => s.mids.filter((m) => m > s.head).slice(0, read), limit)
      merged.push(...page)
      if (page.length < limit) break
      after = page[page.length - 1]!
    }
    t.same(merged, all, `${count} mids in ${streams} streams, ${read} read at a time, pages of ${limit}`)
  }
})
