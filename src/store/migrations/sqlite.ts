// SQLite schema, versioned by PRAGMA user_version. Each entry runs once, in order, inside
// BEGIN IMMEDIATE: a second process opening the same file waits and then finds it done.
import type Database from 'better-sqlite3'

const MIGRATIONS: readonly string[] = [
  // 1: messages. AUTOINCREMENT so a purge of the newest rows never lets a mid be reused:
  // mids only grow, or `since` would skip messages. read/delivered are 0/1.
  `CREATE TABLE duet_messages (
     mid       INTEGER PRIMARY KEY AUTOINCREMENT,
     sender    TEXT    NOT NULL,
     recipient TEXT    NOT NULL,
     msg       TEXT    NOT NULL,
     ts        INTEGER NOT NULL,
     read      INTEGER NOT NULL,
     delivered INTEGER NOT NULL,
     ref       TEXT
   );
   -- since / headMid
   CREATE INDEX duet_messages_recipient_mid ON duet_messages (recipient, mid);
   -- undelivered, markDelivered
   CREATE INDEX duet_messages_undelivered ON duet_messages (recipient, mid) WHERE delivered = 0;
   -- unreadCount, markRead, the unread column of conversations
   CREATE INDEX duet_messages_unread ON duet_messages (recipient, sender) WHERE read = 0;
   -- the pair index, one per direction: history merges the two newest-first scans, and
   -- conversations groups each side by peer
   CREATE INDEX duet_messages_sender_pair ON duet_messages (sender, recipient, mid);
   CREATE INDEX duet_messages_recipient_pair ON duet_messages (recipient, sender, mid);
   -- idempotent resend
   CREATE UNIQUE INDEX duet_messages_sender_ref ON duet_messages (sender, ref) WHERE ref IS NOT NULL;`,
  // 2: two fewer indexes, because every index costs each insert a page write per commit
  // (the store's main cost). History reads both directions from the recipient pair index;
  // unread rows are found after the conversation's read mark (every message up to it is
  // read), not through an index of their own; the ref index, now (sender, recipient, ref)
  // over every row, also serves the sender's side of the conversation list (the rowid in
  // each entry is the mid). A ref is unique per conversation, which a resend always is.
  `DROP INDEX duet_messages_unread;
   DROP INDEX duet_messages_sender_pair;
   DROP INDEX duet_messages_sender_ref;
   CREATE UNIQUE INDEX duet_messages_sender_ref ON duet_messages (sender, recipient, ref);
   CREATE TABLE duet_read_marks (
     owner TEXT    NOT NULL,
     peer  TEXT    NOT NULL,
     mid   INTEGER NOT NULL,
     PRIMARY KEY (owner, peer)
   ) WITHOUT ROWID;`,
  // 3: the (recipient, mid) index goes, one page write fewer per insert: since and headMid
  // read the recipient pair index a sender at a time, a seek or two per conversation partner.
  `DROP INDEX duet_messages_recipient_mid;`,
  // 4: whether the last run stopped cleanly (sqlite-run-state.ts).
  `CREATE TABLE duet_meta (
     key   TEXT PRIMARY KEY,
     value TEXT NOT NULL
   ) WITHOUT ROWID;`,
  // 5: each user's conversations by last activity (sqlite-conversations.ts): a row per
  // (owner, peer) with the conversation's newest mid, indexed by (owner, last_mid), so a page
  // of the list is one index range. The store writes appends' conversations to it about once
  // a second, with the newest mid it covers; deletes, whoever makes them, through the trigger.
  `CREATE TABLE duet_conversations (
     owner    TEXT    NOT NULL,
     peer     TEXT    NOT NULL,
     last_mid INTEGER NOT NULL,
     PRIMARY KEY (owner, peer)
   ) WITHOUT ROWID;
   CREATE INDEX duet_conversations_recent ON duet_conversations (owner, last_mid);
   INSERT INTO duet_conversations (owner, peer, last_mid)
     SELECT owner, peer, max(mid) FROM (
       SELECT recipient AS owner, sender AS peer, mid FROM duet_messages
       UNION ALL
       SELECT sender, recipient, mid FROM duet_messages WHERE sender <> recipient
     ) GROUP BY owner, peer;
   -- The newest mid the table covers: a message above it was stored by an older duet.
   INSERT INTO duet_meta (key, value) SELECT 'conversations', coalesce(max(mid), 0) FROM duet_messages;
   -- A conversation whose newest message went takes the newest one left, or goes. (When
   -- newer ones are left, the deleted one was not the newest: nothing changes.) REPLACE: an
   -- older duet may have inserted the deleted one without noting it; its delete still works.
   CREATE TRIGGER duet_conversations_delete AFTER DELETE ON duet_messages BEGIN
     DELETE FROM duet_conversations WHERE owner IN (OLD.sender, OLD.recipient) AND last_mid = OLD.mid;
     INSERT OR REPLACE INTO duet_conversations (owner, peer, last_mid)
       SELECT sides.owner, sides.peer, newest.mid
       FROM (SELECT OLD.recipient AS owner, OLD.sender AS peer UNION SELECT OLD.sender, OLD.recipient) AS sides,
            (SELECT max(
               coalesce((SELECT max(mid) FROM duet_messages WHERE recipient = OLD.recipient AND sender = OLD.sender), 0),
               coalesce((SELECT max(mid) FROM duet_messages WHERE recipient = OLD.sender AND sender = OLD.recipient), 0)) AS mid) AS newest
       WHERE newest.mid BETWEEN 1 AND OLD.mid - 1;
   END;`,
  // 6: the webhook outbox (sqlite-outbox.ts): one event per message, keyed by its mid (an
  // insert appends to the table's b-tree), gone with the message through the trigger. Only
  // pending events are in the due index, only failed ones in the failed one. state: 0 pending,
  // 1 sent, 2 failed. The tag makes this file's event ids its own (outbox.ts eventId).
  `CREATE TABLE duet_webhook_events (
     mid             INTEGER PRIMARY KEY,
     ts              INTEGER NOT NULL,
     state           INTEGER NOT NULL DEFAULT 0,
     attempts        INTEGER NOT NULL DEFAULT 0,
     due_at          INTEGER NOT NULL,
     claim           TEXT,
     lease_until     INTEGER NOT NULL DEFAULT 0,
     last_error      TEXT,
     last_attempt_at INTEGER
   );
   CREATE INDEX duet_webhook_events_due ON duet_webhook_events (due_at) WHERE state = 0;
   CREATE INDEX duet_webhook_events_failed ON duet_webhook_events (mid) WHERE state = 2;
   CREATE TRIGGER duet_webhook_events_message_gone AFTER DELETE ON duet_messages BEGIN
     DELETE FROM duet_webhook_events WHERE mid = OLD.mid;
   END;
   INSERT INTO duet_meta (key, value) VALUES ('webhook_tag', lower(hex(randomblob(8))));`,
]

/** Brings the schema up to `target` (the latest unless a test wants an older one). */
export function migrateSqlite(db: Database.Database, target = MIGRATIONS.length): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number
    for (let v = version; v < target; v++) db.exec(MIGRATIONS[v]!)
    if (version < target) db.pragma(`user_version = ${target}`)
  }).immediate()
}
