import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import { WalSync } from '../../src/store/wal-sync.js'

const root = await mkdtemp(join(tmpdir(), 'duet-walsync-'))
t.teardown(() => rm(root, { recursive: true, force: true }))

t.test('commits made while an fdatasync runs are acknowledged by the next one, in order', async (t) => {
  const path = join(root, 'order.db')
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE x (v INTEGER)')
  const sync = new WalSync(path)
  t.teardown(() => {
    sync.close()
    db.close()
  })
  const acked: number[] = []
  const errors: Array<Error | null> = []
  for (let i = 0; i < 5; i++) {
    db.prepare('INSERT INTO x VALUES (?)').run(i)
    sync.afterCommit((error) => {
      errors.push(error)
      acked.push(i)
    })
  }
  t.same(acked, [], 'nothing is acknowledged before an fdatasync completed')
  await sync.drain()
  t.same(acked, [0, 1, 2, 3, 4])
  t.same(errors, [null, null, null, null, null])
  await sync.drain() // idle: resolves at once
})

t.test('a failed fdatasync is reported to the commits waiting for it', async (t) => {
  const path = join(root, 'fail.db')
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.exec('CREATE TABLE x (v INTEGER)')
  t.teardown(() => db.close())
  const sync = new WalSync(path)
  sync.close() // its descriptor is gone: fdatasync fails with EBADF
  const error = await new Promise<Error | null>((resolve) => sync.afterCommit(resolve))
  t.match(error, { code: 'EBADF' })
})
