import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createMessageStore } from '../../src/store/create-store.js'

const root = await mkdtemp(join(tmpdir(), 'duet-factory-'))
t.teardown(() => rm(root, { recursive: true, force: true }))

t.test('memory: gives the in-memory store', async (t) => {
  const store = await createMessageStore('memory:')
  t.equal(store.kind, 'memory')
  await store.close()
})

t.test('sqlite:<path> creates the file and its directory', async (t) => {
  const path = join(root, 'nested', 'duet.db')
  const store = await createMessageStore(`sqlite:${path}`)
  t.teardown(() => store.close())
  t.equal(store.kind, 'sqlite')
  await store.append({ from: 'a', to: 'b', msg: 'hi', read: false, delivered: false })
  t.ok(existsSync(path))
})

t.test('sqlite:///absolute/path and sqlite::memory:', async (t) => {
  const path = join(root, 'abs.db')
  const file = await createMessageStore(`sqlite://${path}`)
  await file.close()
  t.ok(existsSync(path))
  const memory = await createMessageStore('sqlite::memory:')
  t.equal(memory.kind, 'sqlite')
  await memory.close()
})

t.test('anything else is refused without echoing credentials', async (t) => {
  const error: unknown = await createMessageStore('mysql://root:s3cret@db/duet').catch((e: unknown) => e)
  t.match(error, { message: /unsupported store URL scheme "mysql:"/ })
  t.notMatch(error, { message: /s3cret/ })
  await t.rejects(createMessageStore('sqlite:'), /needs a path/)
  await t.rejects(createMessageStore('./duet.db'), /unsupported/)
})
