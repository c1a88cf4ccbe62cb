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
]

export function migrateSqlite(db: Database.Database): void {
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]!)
    if (version < MIGRATIONS.length) db.pragma(`user_version = ${MIGRATIONS.length}`)
  }).immediate()
}
