// The memory store's text arena: every text comes back as it was put, across buffer
// boundaries and in a buffer of its own when longer than one; an erased text reads as ''.
import t from 'tap'
import { TextArena } from '../../src/store/text-arena.js'

t.test('texts come back whole, in and across buffers, whatever their characters', async (t) => {
  const arena = new TextArena()
  const texts = ['', 'a', 'é✓😀\u0000 tab\t', '✓'.repeat(400_000), 'x'.repeat(700_000), '😀'.repeat(300_000), 'last']
  const indexes = texts.map((text) => arena.put(text))
  t.same(indexes, [0, 1, 2, 3, 4, 5, 6], 'indexes in the order of the calls')
  for (let i = 0; i < texts.length; i++) t.equal(arena.get(i), texts[i], `text ${i} (${texts[i]!.length} units)`)
})

t.test('an erased text reads as empty, its neighbours unchanged', async (t) => {
  const arena = new TextArena()
  for (const text of ['before', 'secret', 'after']) arena.put(text)
  arena.erase(1)
  arena.erase(1)
  t.same([arena.get(0), arena.get(1), arena.get(2)], ['before', '', 'after'])
})
