// The PostgreSQL store's SQL, named so each statement is prepared once per connection, the
// row it reads, the writes its batches carry and the schema it lives in. The SQL is exported
// whole for the tests that EXPLAIN it.
import type { QueryConfig } from 'pg'
import type { StoredMessage } from '../protocol/message.js'
import { PREVIEW_LENGTH } from '../protocol/preview.js'
import type { AppendResult, NewMessage } from './message-store.js'
import { quoteIdent } from './migrations/postgres.js'
import type { QueuedWrite } from './write-batcher.js'

export interface MessageRow {
  mid: string
  sender: string
  recipient: string
  msg: string
  ts: string
  read: boolean
}

type Statement = Pick<QueryConfig, 'name' | 'text'>

/** Rows one purge statement deletes at most. */
export const PURGE_CHUNK = 1000

/** The store's SQL (exported for the tests that EXPLAIN it). */
export function statements(schema: string) {
  const s = quoteIdent(schema)
  const T = `${s}.duet_messages`
  const cols = 'mid, sender, recipient, msg, ts, read'
  // Named, so each connection parses and plans them once.
  const q = (name: string, text: string): Statement => ({ name: `duet_${name}`, text })
  // The peer's marks for the messages $1 sent `peer` (PeerMarks): newest first down the
  // recipient pair index to the first that qualifies, past the unread (or undelivered) ones at
  // most, as the unread count does. 0 when none.
  const peerMarks = (peer: string): string =>
    `coalesce((SELECT mid FROM ${T} WHERE recipient = ${peer} AND sender = $1 AND (read OR delivered) ORDER BY mid DESC LIMIT 1), 0)
       AS peer_delivered,
     coalesce((SELECT mid FROM ${T} WHERE recipient = ${peer} AND sender = $1 AND read ORDER BY mid DESC LIMIT 1), 0) AS peer_read`
  return {
    takeMids: q('take_mids', `UPDATE ${s}.duet_seq SET v = v + $1 RETURNING v`),
    insert: q(
      'insert',
      `INSERT INTO ${T} (mid, sender, recipient, msg, ts, read, delivered, ref)
       SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bool[], $7::bool[], $8::text[])
       ON CONFLICT (sender, recipient, ref) WHERE ref IS NOT NULL DO NOTHING RETURNING mid`,
    ),
    byRefs: q(
      'by_refs',
      `SELECT ${cols}, ref FROM ${T}
       WHERE (sender, recipient, ref) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))`,
    ),
    markRead: q('mark_read', `UPDATE ${T} SET read = true WHERE recipient = $1 AND sender = $2 AND NOT read`),
    markDelivered: q(
      'mark_delivered',
      `UPDATE ${T} SET delivered = true WHERE recipient = $1 AND NOT delivered AND mid = ANY($2::bigint[])`,
    ),
    setDelivered: q('set_delivered', `UPDATE ${T} SET delivered = $3 WHERE recipient = $1 AND mid = $2`),
    head: q('head', `SELECT mid FROM ${T} WHERE recipient = $1 ORDER BY mid DESC LIMIT 1`),
    since: q('since', `SELECT ${cols} FROM ${T} WHERE recipient = $1 AND mid > $2 ORDER BY mid LIMIT $3`),
    undelivered: q(
      'undelivered',
      `SELECT ${cols} FROM ${T} WHERE recipient = $1 AND NOT delivered ORDER BY mid LIMIT $2`,
    ),
    // Per conversation with activity after $2, the first $3 messages $1 sent after $2 (the
    // sender pair index), then the first $3 of those: carbons' replay.
    sentSince: q(
      'sent_since',
      `SELECT ${cols} FROM ${T} WHERE mid IN (
         SELECT x.mid FROM ${s}.duet_conversations c
         CROSS JOIN LATERAL (SELECT mid FROM ${T} WHERE sender = $1 AND recipient = c.peer AND mid > $2 ORDER BY mid LIMIT $3) x
         WHERE c.owner = $1 AND c.peer <> $1 AND c.last_mid > $2
         ORDER BY x.mid LIMIT $3)
       ORDER BY mid`,
    ),
    sentHead: q(
      'sent_head',
      `SELECT max(x.mid) AS mid FROM ${s}.duet_conversations c
       CROSS JOIN LATERAL (SELECT max(mid) AS mid FROM ${T} WHERE sender = $1 AND recipient = c.peer) x
       WHERE c.owner = $1 AND c.peer <> $1`,
    ),
    peerMarks: q('peer_marks', `SELECT ${peerMarks('$2')}`),
    unread: q('unread', `SELECT count(*) AS n FROM ${T} WHERE recipient = $1 AND sender = $2 AND NOT read`),
    // Both directions, each newest first through its pair index; the second half skips
    // self-messages, which the first half already returned.
    history: q(
      'history',
      `(SELECT ${cols} FROM ${T} WHERE sender = $2 AND recipient = $1 AND mid < $3 ORDER BY mid DESC LIMIT $4)
       UNION ALL
       (SELECT ${cols} FROM ${T} WHERE sender = $1 AND recipient = $2 AND sender <> recipient AND mid < $3
        ORDER BY mid DESC LIMIT $4)
       ORDER BY mid DESC LIMIT $4`,
    ),
    // One range of the conversation index (migration 3), newest first: `limit` rows however
    // many partners the user has. Only the preview's worth of each text is read (substr
    // counts characters, one more tells whether it was cut); unread from the partial index.
    conversations: q(
      'conversations',
      `SELECT c.peer, m.mid, m.sender, m.recipient, substr(m.msg, 1, ${PREVIEW_LENGTH + 1}) AS msg, m.ts,
         (SELECT count(*) FROM ${T} u WHERE u.recipient = $1 AND u.sender = c.peer AND NOT u.read) AS unread,
         ${peerMarks('c.peer')}
       FROM (SELECT peer, last_mid FROM ${s}.duet_conversations WHERE owner = $1 AND last_mid < $2
             ORDER BY last_mid DESC LIMIT $3) c
       -- LATERAL: one primary-key lookup per row; a merge join down the messages' primary key
       -- (the planner's pick on some statistics) would walk every newer message of any user.
       CROSS JOIN LATERAL (SELECT * FROM ${T} WHERE mid = c.last_mid) m
       ORDER BY c.last_mid DESC`,
    ),
    // The write batches' lock: a purge's trigger and a batch's then never update the same
    // conversation rows in opposite orders (a deadlock).
    lockSeq: q('lock_seq', `SELECT v FROM ${s}.duet_seq FOR UPDATE`),
    // A user's export, one page: both directions, oldest first. The received half reads the
    // (recipient, mid) index in order; the sent half has no (sender, mid) index (one more
    // per insert) and sorts the user's sent messages after the cursor to take the first.
    userMessages: q(
      'user_messages',
      `(SELECT ${cols} FROM ${T} WHERE recipient = $1 AND mid > $2 ORDER BY mid LIMIT $3)
       UNION ALL
       (SELECT ${cols} FROM ${T} WHERE sender = $1 AND recipient <> $1 AND mid > $2 ORDER BY mid LIMIT $3)
       ORDER BY mid LIMIT $3`,
    ),
    // An erase, a chunk at a time: the messages to the user, then from them. The conversation
    // list follows by its delete trigger.
    eraseReceived: q('erase_received', `DELETE FROM ${T} WHERE mid IN (SELECT mid FROM ${T} WHERE recipient = $1 LIMIT $2)`),
    eraseSent: q('erase_sent', `DELETE FROM ${T} WHERE mid IN (SELECT mid FROM ${T} WHERE sender = $1 LIMIT $2)`),
    purgeChunk: q(
      'purgeChunk',
      `DELETE FROM ${T} WHERE mid IN (SELECT mid FROM ${T} WHERE ts < $1 ORDER BY mid LIMIT $2)`,
    ),
  }
}

export function toMessage(row: MessageRow): StoredMessage {
  return { mid: row.mid, from: row.sender, to: row.recipient, msg: row.msg, ts: Number(row.ts), read: row.read }
}

/** The writes a batch carries, each settled when its transaction commits. */
export interface AppendWrite extends QueuedWrite {
  kind: 'append'
  input: NewMessage
  resolve(result: AppendResult): void
}
interface MarkReadWrite extends QueuedWrite {
  kind: 'markRead'
  uid: string
  peer: string
  resolve(changed: number): void
}
interface MarkDeliveredWrite extends QueuedWrite {
  /** Exactly these mids become delivered. */
  kind: 'markDelivered'
  uid: string
  mids: string[]
  resolve(): void
}
interface SetDeliveredWrite extends QueuedWrite {
  /** Exactly `mid`, to `delivered`. */
  kind: 'setDelivered'
  uid: string
  mid: string
  delivered: boolean
  resolve(): void
}
export type PgWrite = AppendWrite | MarkReadWrite | MarkDeliveredWrite | SetDeliveredWrite

/** The URL without its `schema` parameter, and the schema: the option, the parameter, or public. */
export function resolveSchema(url: string, schema: string | undefined): { url: string; schema: string } {
  let fromUrl: string | null = null
  let cleanUrl = url
  if (URL.canParse(url)) {
    const parsed = new URL(url)
    fromUrl = parsed.searchParams.get('schema')
    if (fromUrl !== null) {
      parsed.searchParams.delete('schema')
      cleanUrl = parsed.toString()
    }
  }
  const name = schema ?? fromUrl ?? 'public'
  if (name === '' || Buffer.byteLength(name) > 63) throw new Error(`invalid postgres schema name ${JSON.stringify(name)}`)
  return { url: cleanUrl, schema: name }
}
