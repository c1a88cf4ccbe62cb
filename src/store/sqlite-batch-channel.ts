// Where a write's time goes inside the SQLite store, for whoever subscribes (bench/probe.ts,
// or an APM): each write batch, once its fdatasync has answered, is published on the
// diagnostics channel `duet:sqlite:batch` (a file store; `:memory:` has no fdatasync to time).
// Nothing is timed while no one subscribes.
import { channel } from 'node:diagnostics_channel'

export const SQLITE_BATCH_CHANNEL = 'duet:sqlite:batch'
export const sqliteBatchChannel = channel(SQLITE_BATCH_CHANNEL)

export interface SqliteBatchTiming {
  /** Per write of the batch: from its submission to the batch's start (waiting for the batch before it). */
  queuedMs: number[]
  /** Applying and committing the batch, on the event loop (a checkpoint included, when the commit crossed `wal_autocheckpoint`). */
  commitMs: number
  /** From the commit to its WAL fdatasync's answer (off the event loop). */
  syncMs: number
}
