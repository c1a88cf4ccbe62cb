// The memory store's ref index: a (sender, recipient, ref) names its message whatever other
// triple shares its hash, a removed one names nothing, and a message with no ref is never found.
import t from 'tap'
import { MessageColumns } from '../../src/store/memory-columns.js'
import { refHash, RefIndex } from '../../src/store/ref-index.js'

/** An index over columns of its own, as the memory store keeps them, hashing as the store does. */
function index() {
  const columns = new MessageColumns()
  const index = new RefIndex(columns)
  const refs = {
    find: (sender: string, recipient: string, ref: string) => index.find(refHash(sender, recipient, ref), sender, recipient, ref),
    remove: (seq: number) => index.remove(seq),
  }
  const add = (sender: string, recipient: string, ref?: string): number => {
    const seq = columns.push(sender, recipient, 0, 0) + 1
    index.add(seq, ref, ref === undefined ? 0 : refHash(sender, recipient, ref))
    return seq
  }
  return { refs, add }
}

/** Two refs from alice to bob with the same hash (30 bits: found within about 40 000 tries). */
function collidingRefs(): [string, string] {
  const seen = new Map<number, string>()
  for (let n = 0; ; n++) {
    const ref = `r${n}`
    const hash = refHash('alice', 'bob', ref)
    const other = seen.get(hash)
    if (other !== undefined) return [other, ref]
    seen.set(hash, ref)
  }
}

t.test('each ref names its own message, in its own conversation only', async (t) => {
  const { refs, add } = index()
  const first = add('alice', 'bob', 'r1')
  const reply = add('bob', 'alice', 'r1')
  const other = add('alice', 'carol', 'r1')
  add('alice', 'bob')
  const empty = add('alice', 'bob', '')
  t.equal(refs.find('alice', 'bob', 'r1'), first)
  t.equal(refs.find('bob', 'alice', 'r1'), reply)
  t.equal(refs.find('alice', 'carol', 'r1'), other)
  t.equal(refs.find('alice', 'bob', ''), empty, 'an empty ref is a ref')
  t.equal(refs.find('alice', 'bob', 'r2'), undefined)
  t.equal(refs.find('ab', 'ob', 'r1'), undefined, 'the parts are not run together')
})

t.test('refs whose hashes collide are told apart, and each can be removed', async (t) => {
  const [older, newer] = collidingRefs()
  t.equal(refHash('alice', 'bob', older), refHash('alice', 'bob', newer), `${older} and ${newer} collide`)

  const { refs, add } = index()
  const a = add('alice', 'bob', older)
  const b = add('alice', 'bob', newer)
  t.equal(refs.find('alice', 'bob', older), a, 'the older, behind the newer in the chain')
  t.equal(refs.find('alice', 'bob', newer), b)

  refs.remove(a) // the end of the chain, found from its head
  t.equal(refs.find('alice', 'bob', older), undefined, 'removed from the end of the chain')
  t.equal(refs.find('alice', 'bob', newer), b, 'the head stays')

  const c = add('alice', 'bob', older)
  refs.remove(c) // the head
  refs.remove(c) // twice is once
  t.equal(refs.find('alice', 'bob', older), undefined, 'removed from the head')
  t.equal(refs.find('alice', 'bob', newer), b, 'the rest of the chain stays')
  refs.remove(b)
  t.equal(refs.find('alice', 'bob', newer), undefined, 'the last one gone')

  const again = add('alice', 'bob', newer)
  t.equal(refs.find('alice', 'bob', newer), again, 'a removed ref can name a new message')
})

t.test('removing a message with no ref changes nothing', async (t) => {
  const { refs, add } = index()
  const kept = add('alice', 'bob', 'r1')
  const bare = add('alice', 'bob')
  refs.remove(bare)
  t.equal(refs.find('alice', 'bob', 'r1'), kept)
})

t.test('every ref is found after its shard has grown many times, and removals keep the rest', async (t) => {
  const { refs, add } = index()
  const seqs = Array.from({ length: 20_000 }, (_, n) => add(`user${n % 7}`, `user${n % 5}`, `ref-${n}`))
  const lost = seqs.filter((seq, n) => refs.find(`user${n % 7}`, `user${n % 5}`, `ref-${n}`) !== seq)
  t.same(lost, [], '20 000 refs, 16 buckets a shard at first')
  for (let n = 0; n < seqs.length; n += 2) refs.remove(seqs[n]!)
  const wrong = seqs.filter((seq, n) => refs.find(`user${n % 7}`, `user${n % 5}`, `ref-${n}`) !== (n % 2 === 0 ? undefined : seq))
  t.same(wrong, [], 'the removed half names nothing, the other half its message')
})
