// Picks the MessageStore from a URL, so the engine is configuration, not code:
//   memory:                                  in-process, nothing survives a restart
//   sqlite:<path>, sqlite::memory:           one file (sqlite:///abs/path also works)
//   postgres://... or postgresql://...       optional ?schema=<name> (default public)
// Only the chosen engine is loaded, with its driver: a start pays for no other.
import type { MessageStore } from './message-store.js'
import type { Logger } from '../logger.js'

export interface CreateStoreOptions {
  logger?: Logger
}

/** Resolves with a store that is migrated and ready to serve. */
export async function createMessageStore(url: string, options: CreateStoreOptions = {}): Promise<MessageStore> {
  const { logger } = options
  if (url === 'memory:' || url === 'memory://') {
    const { MemoryMessageStore } = await import('./memory-store.js')
    return new MemoryMessageStore()
  }
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length)
    if (path.startsWith('//')) path = path.slice(2)
    if (path === '') throw new Error('store URL "sqlite:" needs a path, e.g. sqlite:./data/duet.db or sqlite::memory:')
    const { SqliteMessageStore } = await import('./sqlite-store.js')
    return new SqliteMessageStore({ path, logger })
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    const { PostgresMessageStore } = await import('./postgres-store.js')
    return new PostgresMessageStore({ url, logger }).start()
  }
  // Only the scheme is echoed: the rest may hold credentials.
  const scheme = /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? '(none)'
  throw new Error(
    `unsupported store URL scheme ${JSON.stringify(scheme)}: use memory:, sqlite:<path> or postgres://user@host/db`,
  )
}
