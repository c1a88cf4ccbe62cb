// A user's export: every message to or from them as NDJSON, read from the store a page at a
// time as the reader takes the lines (backpressure), so memory holds a page, not the history.
import { Readable } from 'node:stream'
import type { StoredMessage } from '../protocol/message.js'
import { userPages, type MessageStore } from './message-store.js'

/** Messages per store read. */
export const EXPORT_PAGE = 500

/** One line: the history route's fields, in its order. */
export function exportLine(message: StoredMessage): string {
  const { mid, from, to, msg, ts, read } = message
  return JSON.stringify({ mid, from, to, msg, ts, read }) + '\n'
}

async function* exportLines(store: MessageStore, uid: string): AsyncGenerator<string> {
  for await (const page of userPages(store, uid, EXPORT_PAGE)) yield page.map(exportLine).join('')
}

/** The export of `uid`, oldest first (by mid); the next page is read once the last is taken. */
export function exportStream(store: MessageStore, uid: string): Readable {
  // Bytes, not objects: the buffer holds about a page however the pages are cut.
  return Readable.from(exportLines(store, uid), { objectMode: false, highWaterMark: 64 * 1024 })
}
