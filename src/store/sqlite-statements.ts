// The SQLite store's statements, prepared once per database, and the row they read.
import type Database from 'better-sqlite3'
import type { StoredMessage } from '../protocol/message.js'

export interface MessageRow {
  mid: number
  sender: string
  recipient: string
  msg: string
  ts: number
  read: number
}

export const COLUMNS = 'mid, sender, recipient, msg, ts, read'
export const PURGE_CHUNK = 1000
export const T = 'duet_messages'
export const MARKS = 'duet_read_marks'
export const PAIR_INDEX = 'duet_messages_recipient_pair'
const CONVERSATIONS = 'duet_conversations'
// The distinct senders of messages to @uid, a seek each (SQLite does no skip-scan here on its
// own). since and headMid walk the recipient pair index sender by sender, so that inserts need
// no (recipient, mid) index (migration 3): they cost a seek or two per conversation partner.
const SENDERS = `s(uid) AS (
  SELECT (SELECT sender FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = @uid ORDER BY sender LIMIT 1)
  UNION ALL
  SELECT (SELECT sender FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = @uid AND sender > s.uid ORDER BY sender LIMIT 1)
  FROM s WHERE s.uid IS NOT NULL)`

/**
 * The peer's marks for the messages @uid sent @peer (PeerMarks): newest first down the
 * recipient pair index, above the peer's read mark only (every message up to it is read), so
 * a walk passes the unread and undelivered messages at most, as the unread count does.
 * `peer` is an expression: @peer here, c.peer in the conversation page.
 */
export function peerMarkColumns(peer: string): string {
  const mark = `coalesce((SELECT mid FROM ${MARKS} WHERE owner = ${peer} AND peer = @uid), 0)`
  const newest = (where: string): string =>
    `(SELECT mid FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = ${peer} AND sender = @uid AND ${where}
      ORDER BY mid DESC LIMIT 1)`
  // Up to the mark every message is read, but the mark's own may be gone (retention): the
  // newest one still stored at or below it, or none.
  const atMark = newest(`mid <= ${mark}`)
  return `coalesce(${newest(`mid > ${mark} AND (read = 1 OR delivered = 1)`)}, ${atMark}, 0) AS peer_delivered,
    coalesce(${newest(`mid > ${mark} AND read = 1`)}, ${atMark}, 0) AS peer_read`
}

export function prepareStatements(db: Database.Database) {
  // Messages from @peer to @uid above the conversation's read mark: the only ones that can be unread.
  const afterMark = `recipient = @uid AND sender = @peer
    AND mid > coalesce((SELECT mid FROM ${MARKS} WHERE owner = @uid AND peer = @peer), 0)`
  return {
    // run() and its lastInsertRowid, not RETURNING: about a tenth less CPU per insert.
    insert: db.prepare<[string, string, string, number, number, number, string | null]>(
      `INSERT INTO ${T} (sender, recipient, msg, ts, read, delivered, ref) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (sender, recipient, ref) DO NOTHING`,
    ),
    byRef: db.prepare<[string, string, string], MessageRow>(
      `SELECT ${COLUMNS} FROM ${T} WHERE sender = ? AND recipient = ? AND ref = ?`,
    ),
    // The newest mid of any sender's messages to @uid (the index's max per sender).
    head: db.prepare<{ uid: string }, { mid: number | null }>(
      `WITH RECURSIVE ${SENDERS}
       SELECT max((SELECT max(mid) FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = @uid AND sender = s.uid)) AS mid
       FROM s WHERE s.uid IS NOT NULL`,
    ),
    // The senders with messages to @uid after @after, by the first of those.
    sendersAfter: db.prepare<{ uid: string; after: bigint }, { sender: string; first: number }>(
      `WITH RECURSIVE ${SENDERS},
       -- Materialized, or the subquery would run twice per sender (the filter and the column).
       firsts(sender, first) AS MATERIALIZED (
         SELECT s.uid,
           (SELECT min(mid) FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = @uid AND sender = s.uid AND mid > @after)
         FROM s WHERE s.uid IS NOT NULL)
       SELECT sender, first FROM firsts WHERE first IS NOT NULL ORDER BY first`,
    ),
    // One sender's first @limit mids after @after and below @below (index only).
    sinceMids: db
      .prepare<[string, string, bigint, bigint | number, number], number>(
        `SELECT mid FROM ${T} INDEXED BY ${PAIR_INDEX}
         WHERE recipient = ? AND sender = ? AND mid > ? AND mid < ? ORDER BY mid LIMIT ?`,
      )
      .pluck(),
    byMids: db.prepare<[string], MessageRow>(
      `SELECT ${COLUMNS} FROM ${T} WHERE mid IN (SELECT value FROM json_each(?)) ORDER BY mid`,
    ),
    // Through the user's conversations with activity after @after, a range of the recipient
    // pair index each: the messages @uid sent after @after (carbons' replay).
    sentSince: db.prepare<{ uid: string; after: bigint; limit: number }, MessageRow>(
      `SELECT ${COLUMNS} FROM ${T} WHERE mid IN (
         SELECT m.mid FROM duet_conversations c JOIN ${T} m INDEXED BY ${PAIR_INDEX} ON m.recipient = c.peer AND m.sender = @uid
         WHERE c.owner = @uid AND c.peer <> @uid AND c.last_mid > @after AND m.mid > @after
         ORDER BY m.mid LIMIT @limit)
       ORDER BY mid`,
    ),
    // The newest message @uid sent: one seek per conversation partner.
    sentHead: db.prepare<{ uid: string }, { mid: number | null }>(
      `SELECT max((SELECT max(mid) FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = c.peer AND sender = @uid)) AS mid
       FROM duet_conversations c WHERE c.owner = @uid AND c.peer <> @uid`,
    ),
    undelivered: db.prepare<[string, number], MessageRow>(
      `SELECT ${COLUMNS} FROM ${T} WHERE recipient = ? AND delivered = 0 ORDER BY mid LIMIT ?`,
    ),
    // The page's mids as a JSON array: one statement, however long the page.
    markDelivered: db.prepare<[string, string]>(
      `UPDATE ${T} SET delivered = 1 WHERE recipient = ? AND delivered = 0 AND mid IN (SELECT value FROM json_each(?))`,
    ),
    setDelivered: db.prepare<[number, string, bigint]>(`UPDATE ${T} SET delivered = ? WHERE recipient = ? AND mid = ?`),
    markRead: db.prepare<{ uid: string; peer: string }>(`UPDATE ${T} SET read = 1 WHERE ${afterMark} AND read = 0`),
    // Run after markRead: every message from peer to uid is read now, so the mark moves to the newest.
    moveMark: db.prepare<{ uid: string; peer: string }>(
      `INSERT INTO ${MARKS} (owner, peer, mid)
       SELECT @uid, @peer, max(mid) FROM ${T} WHERE recipient = @uid AND sender = @peer HAVING max(mid) IS NOT NULL
       ON CONFLICT (owner, peer) DO UPDATE SET mid = excluded.mid`,
    ),
    peerMarks: db.prepare<{ uid: string; peer: string }, { peer_delivered: number; peer_read: number }>(
      `SELECT ${peerMarkColumns('@peer')}`,
    ),
    unread: db.prepare<{ uid: string; peer: string }, { n: number }>(
      `SELECT count(*) AS n FROM ${T} WHERE ${afterMark} AND read = 0`,
    ),
    // Both directions, each newest first through the recipient pair index; the second half
    // skips self-messages, which the first half already returned.
    history: db.prepare<{ uid: string; peer: string; before: bigint; limit: number }, MessageRow>(
      `SELECT * FROM (SELECT ${COLUMNS} FROM ${T} INDEXED BY ${PAIR_INDEX}
                      WHERE recipient = @uid AND sender = @peer AND mid < @before ORDER BY mid DESC LIMIT @limit)
       UNION ALL
       SELECT * FROM (SELECT ${COLUMNS} FROM ${T} INDEXED BY ${PAIR_INDEX}
                      WHERE recipient = @peer AND sender = @uid AND sender <> recipient AND mid < @before
                      ORDER BY mid DESC LIMIT @limit)
       ORDER BY mid DESC LIMIT @limit`,
    ),
    // Oldest first along the primary key, a chunk at a time: ts grows with mid, so the
    // scan stops soon after the last old row and needs no index of its own.
    purgeChunk: db.prepare<[number, number]>(
      `DELETE FROM ${T} WHERE mid IN (SELECT mid FROM ${T} WHERE ts < ? ORDER BY mid LIMIT ?)`,
    ),
    // After a purge: the marks of conversations with no message left go too.
    purgeMarks: db.prepare(
      `DELETE FROM ${MARKS} WHERE NOT EXISTS (SELECT 1 FROM ${T} WHERE recipient = owner AND sender = peer)`,
    ),
    // A user's export, one page: each conversation and direction by its first mid after
    // @after (from the conversation list: a seek per partner, not a sort of every message),
    // then read a few at a time by sinceMids.
    exportFirsts: db.prepare<{ uid: string; after: bigint }, { recipient: string; sender: string; first: number }>(
      `WITH firsts(recipient, sender, first) AS MATERIALIZED (
         SELECT @uid, c.peer,
           (SELECT min(mid) FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = @uid AND sender = c.peer AND mid > @after)
         FROM ${CONVERSATIONS} c WHERE c.owner = @uid
         UNION ALL
         SELECT c.peer, @uid,
           (SELECT min(mid) FROM ${T} INDEXED BY ${PAIR_INDEX} WHERE recipient = c.peer AND sender = @uid AND mid > @after)
         FROM ${CONVERSATIONS} c WHERE c.owner = @uid AND c.peer <> @uid)
       SELECT recipient, sender, first FROM firsts WHERE first IS NOT NULL ORDER BY first`,
    ),
    // An erase, a chunk at a time: the mids as a JSON array. The conversation list follows by
    // its delete trigger.
    eraseMids: db.prepare<[string]>(`DELETE FROM ${T} WHERE mid IN (SELECT value FROM json_each(?))`),
    // Before the messages go (the conversation list names the peers): the user's read marks,
    // and the peers' marks of their conversations with the user.
    eraseMarks: db.prepare<{ uid: string }>(
      `DELETE FROM ${MARKS} WHERE owner = @uid
         OR (owner IN (SELECT peer FROM ${CONVERSATIONS} WHERE owner = @uid) AND peer = @uid)`,
    ),
    ping: db.prepare('SELECT 1'),
  }
}

export type SqliteStatements = ReturnType<typeof prepareStatements>

/** The first `limit` of two ascending lists of mids, ascending. */
export function firstOfBoth(a: readonly number[], b: readonly number[], limit: number): number[] {
  const out: number[] = []
  let i = 0
  let j = 0
  while (out.length < limit && (i < a.length || j < b.length)) {
    out.push(j === b.length || (i < a.length && a[i]! < b[j]!) ? a[i++]! : b[j++]!)
  }
  return out
}

export function toMessage(row: MessageRow): StoredMessage {
  return { mid: String(row.mid), from: row.sender, to: row.recipient, msg: row.msg, ts: row.ts, read: row.read === 1 }
}
