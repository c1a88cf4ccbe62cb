// The memory store's chunked columns: every value comes back at its index across chunk
// boundaries, in the range of the column's type, and set() changes that one value only.
import t from 'tap'
import { Column } from '../../src/store/column.js'

const COUNT = 10_000 // several chunks of 4 096

t.test('pushed values come back at the indexes push returned', async (t) => {
  const ints = new Column(Int32Array)
  const times = new Column(Float64Array)
  const indexes: number[] = []
  for (let i = 0; i < COUNT; i++) {
    indexes.push(ints.push(i * 7 - 5000))
    times.push(1_764_000_000_000 + i / 4)
  }
  t.same(indexes.slice(0, 3), [0, 1, 2])
  t.equal(indexes[COUNT - 1], COUNT - 1)
  const wrong = indexes.filter((i) => ints.get(i) !== i * 7 - 5000 || times.get(i) !== 1_764_000_000_000 + i / 4)
  t.same(wrong, [], 'every value, millisecond times and negative numbers included')
})

t.test('set changes one value, on either side of a chunk boundary', async (t) => {
  const flags = new Column(Uint8Array)
  for (let i = 0; i < COUNT; i++) flags.push(1)
  flags.set(4095, 3)
  flags.set(4096, 2)
  t.same([flags.get(4094), flags.get(4095), flags.get(4096), flags.get(4097)], [1, 3, 2, 1])
})
