// Acknowledges SQLite commits once their WAL frames are on disk, without blocking the event
// loop on fsync. The connection runs with synchronous=NORMAL (a commit writes its frames but
// does not fsync them); this class fdatasyncs the WAL file on libuv's thread pool and calls
// back every commit made before that fdatasync started. One fdatasync is in flight at a
// time, and it covers every commit before it, so a burst of commits shares one.
import { closeSync, constants, fdatasync, openSync } from 'node:fs'

type Done = (error: Error | null) => void

export class WalSync {
  private readonly fd: number
  private waiting: Done[] = []
  private inFlight = false
  private readonly idleWaiters: Array<() => void> = []

  /** Opens the WAL file of `databasePath` (a database in WAL mode), creating it empty if SQLite has not yet. */
  constructor(databasePath: string) {
    this.fd = openSync(`${databasePath}-wal`, constants.O_RDONLY | constants.O_CREAT)
  }

  /** Calls `done` once everything committed so far is durable, or with the fdatasync's error. */
  afterCommit(done: Done): void {
    this.waiting.push(done)
    if (!this.inFlight) this.start()
  }

  /** Resolves once no commit waits for its fdatasync. */
  drain(): Promise<void> {
    if (!this.inFlight) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  close(): void {
    closeSync(this.fd)
  }

  private start(): void {
    const round = this.waiting
    this.waiting = []
    this.inFlight = true
    fdatasync(this.fd, (error) => {
      this.inFlight = false
      for (const done of round) done(error)
      if (this.waiting.length > 0) this.start()
      else for (const resolve of this.idleWaiters.splice(0)) resolve()
    })
  }
}
