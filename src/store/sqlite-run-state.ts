// Whether the last server to use the database file stopped cleanly. A message to an online
// recipient is stored as pushed and then written to the recipient's connection; a process
// killed in between (or whose last writes the kernel dropped with the connection) leaves it
// marked pushed but never received, and a plain bind would not bring it. So the store records
// `running` when it opens and `stopped` when it closes, and on opening after a run that never
// closed it marks the messages of the last UNCLEAN_STOP_WINDOW_MS before the newest as not
// pushed: their recipients get them at the next bind, some perhaps twice (same mid).
import type Database from 'better-sqlite3'

/** How far back from the newest message a push may have been cut off by an unclean stop. */
export const UNCLEAN_STOP_WINDOW_MS = 10_000
/** At most this many of the newest messages are requeued, whatever their timestamps say. */
const MAX_REQUEUED = 100_000

/** Records this run; returns how many messages were marked not pushed after an unclean stop. */
export function beginRun(db: Database.Database): number {
  return db
    .transaction(() => {
      const state = db.prepare<[], string>(`SELECT value FROM duet_meta WHERE key = 'run'`).pluck().get()
      const requeued = state === 'running' ? requeueRecentPushes(db) : 0
      db.prepare(`INSERT INTO duet_meta (key, value) VALUES ('run', 'running') ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run()
      return requeued
    })
    .immediate()
}

/** Records a clean stop: the server wrote out its pushes before closing the store. */
export function endRun(db: Database.Database): void {
  db.prepare(`UPDATE duet_meta SET value = 'stopped' WHERE key = 'run'`).run()
}

function requeueRecentPushes(db: Database.Database): number {
  const newest = db.prepare<[], { mid: number; ts: number }>('SELECT mid, ts FROM duet_messages ORDER BY mid DESC LIMIT 1').get()
  if (newest === undefined) return 0
  // Walks back from the newest row to the first one outside the window. ts grows with mid
  // unless the clock was set back: a row newer than the newest by its clock ends the walk too,
  // and MAX_REQUEUED bounds it whatever the clock did.
  const { changes } = db
    .prepare<{ from: number; to: number; floor: number }>(
      `UPDATE duet_messages SET delivered = 0 WHERE delivered = 1 AND mid > @floor
       AND mid > coalesce((SELECT mid FROM duet_messages WHERE ts < @from OR ts > @to ORDER BY mid DESC LIMIT 1), 0)`,
    )
    .run({ from: newest.ts - UNCLEAN_STOP_WINDOW_MS, to: newest.ts, floor: newest.mid - MAX_REQUEUED })
  return changes
}
