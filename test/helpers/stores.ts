// STORE_URLs for running one app-level suite against every store, each cleaned up after.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { dropSchema, freshSchema, PG_URL } from './postgres.js'

export const STORE_KINDS = ['memory', 'sqlite', 'postgres'] as const
export type StoreKind = (typeof STORE_KINDS)[number]

interface Teardown {
  teardown(fn: () => unknown): void
}

export async function storeUrl(t: Teardown, kind: StoreKind): Promise<string> {
  switch (kind) {
    case 'memory':
      return 'memory:'
    case 'sqlite': {
      const dir = await mkdtemp(join(tmpdir(), 'duet-test-'))
      t.teardown(() => rm(dir, { recursive: true, force: true }))
      return `sqlite:${join(dir, 'duet.db')}`
    }
    case 'postgres': {
      const schema = freshSchema()
      t.teardown(() => dropSchema(schema))
      return `${PG_URL}?schema=${schema}`
    }
  }
}
