// The SQLite store's arrival log (migration 7). An append writes its row here, not into
// duet_messages: a table with no index but its rowid (the mid), so a commit of a few messages
// writes the log's last page or two. Into duet_messages every insert also writes a page of
// each index it touches (the pair and ref indexes, the conversation list), one per message
// when the messages of a commit go to different conversations, and each page is rewritten to
// the WAL by every commit that touches it: about 13 KB of WAL per message at 10 000 msg/s.
// The log's rows move into duet_messages together, where many messages share each index
// page (bench/README.md, "The arrival log"). Each conversation belongs to one of
// `MOVE_GROUPS` groups of the log; once the log holds `MOVE_ROWS` rows, a batch moves its
// largest group: a move holds the event loop a quarter as long as moving the whole log, and
// its pages are shared as well, since a conversation's index pages are all in its group. A batch of
// `DIRECT_APPENDS` appends or more shares its pages already: it writes its rows straight into
// duet_messages, as a row written twice would cost more than it saves, and leaves the log be
// (such a batch is the backlog of a stall, which a move would only make longer).
//
// Every read and every other write of the store moves the log first (its rows are then where
// the queries look), so the log changes nothing a reader sees. Only appends pass it by: a ref
// is looked up in the log through a map of its refs, then in duet_messages. A move is one
// transaction, so a crash leaves each row in exactly one of the two tables; the store moves
// what is left when it opens.
import type Database from 'better-sqlite3'
import type { StoredMessage } from '../protocol/message.js'
import type { AppendResult, NewMessage } from './message-store.js'
import type { SqliteConversations } from './sqlite-conversations.js'
import { refHash } from './ref-index.js'
import { LOG, toMessage, type MessageRow } from './sqlite-statements.js'

/** Once the log holds this many rows... */
export const MOVE_ROWS = 1000
/** ...or this many characters of text (so that large messages do not make a long move)... */
const MOVE_CHARS = 1 << 20
/** ...a batch moves the largest of this many groups. */
export const MOVE_GROUPS = 4
/** A batch with this many appends writes them into duet_messages. */
export const DIRECT_APPENDS = 128

const ROW = 'mid, sender, recipient, msg, ts, read, delivered, ref'
const VALUES = 'VALUES (?, ?, ?, ?, ?, ?, ?, ?'

type Conversation = [owner: string, peer: string, mid: number]
type Row = [number, string, string, string, number, number, number, string | null]

interface Rows {
  /** sender NUL recipient NUL ref -> the message, for the log's rows that have a ref. */
  refs: Map<string, StoredMessage>
  /** owner NUL peer -> both sides of each conversation the rows belong to, at their newest mid. */
  conversations: Map<string, Conversation>
  rows: number
  chars: number
  /** The newest mid of the rows, 0 when there are none. */
  newest: number
}

const refKey = (from: string, to: string, ref: string): string => `${from}\u0000${to}\u0000${ref}`

const noRows = (): Rows => ({ refs: new Map(), conversations: new Map(), rows: 0, chars: 0, newest: 0 })

function note(rows: Rows, from: string, to: string, mid: number, ref: string | null, message: StoredMessage | null, chars: number): void {
  rows.conversations.set(`${from}\u0000${to}`, [from, to, mid])
  if (from !== to) rows.conversations.set(`${to}\u0000${from}`, [to, from, mid])
  if (ref !== null && message !== null) rows.refs.set(refKey(from, to, ref), message)
  rows.rows++
  rows.chars += chars
  rows.newest = mid
}

/** The group of the conversation between two users, either way round. */
export function groupOf(from: string, to: string): number {
  return (from < to ? refHash(from, to, '') : refHash(to, from, '')) % MOVE_GROUPS
}

/** One group of the log: what the committed log holds of it, and what the batch being applied did. */
class LogGroup {
  committed = noRows()
  /** The batch's appends to the group (after its move, if it moved the group). */
  staged = noRows()
  /** The batch moved the group. */
  moved = false

  get rows(): number {
    return (this.moved ? 0 : this.committed.rows) + this.staged.rows
  }

  get chars(): number {
    return (this.moved ? 0 : this.committed.chars) + this.staged.chars
  }

  get newest(): number {
    return Math.max(this.moved ? 0 : this.committed.newest, this.staged.newest)
  }

  find(key: string): StoredMessage | undefined {
    return this.staged.refs.get(key) ?? (this.moved ? undefined : this.committed.refs.get(key))
  }

  /** Its conversations, at their newest mids in the log. */
  conversations(): Map<string, Conversation> {
    const all = this.moved ? new Map<string, Conversation>() : new Map(this.committed.conversations)
    for (const [key, conversation] of this.staged.conversations) all.set(key, conversation)
    return all
  }

  begin(): void {
    this.staged = noRows()
    this.moved = false
  }

  markMoved(): void {
    this.staged = noRows()
    this.moved = true
  }

  commit(): void {
    const rows = this.moved ? noRows() : this.committed
    for (const [key, message] of this.staged.refs) rows.refs.set(key, message)
    for (const [key, conversation] of this.staged.conversations) rows.conversations.set(key, conversation)
    rows.rows += this.staged.rows
    rows.chars += this.staged.chars
    if (this.staged.newest > 0) rows.newest = this.staged.newest
    this.committed = rows
    this.begin()
  }
}

function prepare(db: Database.Database) {
  return {
    insert: db.prepare<[...Row, number]>(`INSERT INTO ${LOG} (${ROW}, grp) ${VALUES}, ?)`),
    insertDirect: db.prepare<Row>(`INSERT INTO duet_messages (${ROW}) ${VALUES}) ON CONFLICT (sender, recipient, ref) DO NOTHING`),
    // The newest mid given: the log's newest, or the messages' AUTOINCREMENT high-water mark
    // (which a purge of the newest rows does not lower). Read at the start of every batch, as
    // another connection to the file may have written since.
    newest: db
      .prepare<[], number>(
        `SELECT max(coalesce((SELECT max(mid) FROM ${LOG}), 0),
                    coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'duet_messages'), 0))`,
      )
      .pluck(),
    logNewest: db.prepare<[], number | null>(`SELECT max(mid) FROM ${LOG}`).pluck(),
    logRows: db.prepare<[], MessageRow & { ref: string | null; grp: number }>(
      `SELECT mid, sender, recipient, msg, ts, read, ref, grp FROM ${LOG} ORDER BY mid`,
    ),
    byRef: db.prepare<[string, string, string], MessageRow>(
      `SELECT mid, sender, recipient, msg, ts, read FROM duet_messages WHERE sender = ? AND recipient = ? AND ref = ?`,
    ),
    // In mid order: the rows land at the end of the table's b-tree, as appends would.
    move: db.prepare(`INSERT INTO duet_messages (${ROW}) SELECT ${ROW} FROM ${LOG} ORDER BY mid`),
    clear: db.prepare(`DELETE FROM ${LOG}`),
    moveGroup: db.prepare<[number]>(`INSERT INTO duet_messages (${ROW}) SELECT ${ROW} FROM ${LOG} WHERE grp = ? ORDER BY mid`),
    clearGroup: db.prepare<[number]>(`DELETE FROM ${LOG} WHERE grp = ?`),
  }
}

export class SqliteMessageLog {
  private readonly sql: ReturnType<typeof prepare>
  private readonly groups = Array.from({ length: MOVE_GROUPS }, () => new LogGroup())
  /** The batch being applied writes its appends into duet_messages; their conversations. */
  private direct: Rows | null = null
  private nextMid = 1

  constructor(
    db: Database.Database,
    private readonly conversations: SqliteConversations,
  ) {
    this.sql = prepare(db)
  }

  /** Whether the log holds rows, this connection's or another's. */
  get pending(): boolean {
    return this.sql.logNewest.get() != null
  }

  /**
   * A batch starts (again, after a rollback), inside its transaction: what an earlier apply
   * staged is void, and the newest mid is read again. A batch of `appends` appends or more
   * writes them into duet_messages.
   */
  begin(appends: number): void {
    for (const group of this.groups) group.begin()
    this.direct = null
    // Another connection to the file appended or moved: the log is read again.
    if ((this.sql.logNewest.get() ?? 0) !== this.newest()) this.reload()
    this.nextMid = (this.sql.newest.get() ?? 0) + 1
    if (appends >= DIRECT_APPENDS) this.direct = noRows()
  }

  /** Inside a batch: stores the message, or finds the one its ref names. */
  append(input: NewMessage, ts: number): AppendResult {
    const ref = input.ref ?? null
    const mid = this.nextMid
    const row: Row = [mid, input.from, input.to, input.msg, ts, +input.read, +input.delivered, ref]
    const message = { mid: String(mid), from: input.from, to: input.to, msg: input.msg, ts, read: input.read }
    const g = groupOf(input.from, input.to)
    if (this.direct) {
      // A resend of a row in the log is found in its map, of one in duet_messages by the
      // (sender, recipient, ref) index, in the insert's own lookup.
      const logged = ref === null ? undefined : this.groups[g]!.find(refKey(input.from, input.to, ref))
      if (logged) return { message: logged, duplicate: true }
      if (this.sql.insertDirect.run(...row).changes === 0) return { message: this.stored(input.from, input.to, ref!)!, duplicate: true }
      note(this.direct, input.from, input.to, mid, ref, null, 0)
    } else {
      if (ref !== null) {
        const found = this.groups[g]!.find(refKey(input.from, input.to, ref)) ?? this.stored(input.from, input.to, ref)
        if (found) return { message: found, duplicate: true }
      }
      this.sql.insert.run(...row, g)
      note(this.groups[g]!.staged, input.from, input.to, mid, ref, message, input.msg.length)
    }
    this.nextMid++
    return { message, duplicate: false }
  }

  /** Ends a batch's writes, inside its transaction: the conversation list, or a move once the log is full. */
  finish(): void {
    if (this.direct) return this.writeDirect()
    let rows = 0
    let chars = 0
    let largest = this.groups[0]!
    for (const group of this.groups) {
      rows += group.rows
      chars += group.chars
      if (group.rows > largest.rows) largest = group
    }
    if (rows >= MOVE_ROWS || chars >= MOVE_CHARS) this.moveGroup(this.groups.indexOf(largest))
  }

  /**
   * Inside a batch: moves every row of the log into duet_messages, with their conversations
   * (and writes those of the rows the batch wrote there itself), so that what follows in the
   * batch reads every message appended before it.
   */
  move(): void {
    this.writeDirect()
    if (this.sql.logNewest.get() == null) return
    this.conversations.write(
      this.groups.flatMap((group) => [...group.conversations().values()]),
      this.newest(),
    )
    this.sql.move.run()
    this.sql.clear.run()
    for (const group of this.groups) group.markMoved()
  }

  /** The batch has committed: what it staged is the log now. */
  commit(): void {
    for (const group of this.groups) group.commit()
    this.direct = null
  }

  private writeDirect(): void {
    if (this.direct === null || this.direct.conversations.size === 0) return
    this.conversations.write(this.direct.conversations.values(), this.direct.newest)
    this.direct.conversations.clear()
  }

  private moveGroup(g: number): void {
    const group = this.groups[g]!
    this.conversations.write(group.conversations().values(), group.newest)
    this.sql.moveGroup.run(g)
    this.sql.clearGroup.run(g)
    group.markMoved()
  }

  /** The newest mid in the log, as far as this connection knows; 0 when it is empty. */
  private newest(): number {
    return Math.max(...this.groups.map((group) => group.newest))
  }

  private stored(from: string, to: string, ref: string): StoredMessage | undefined {
    const row = this.sql.byRef.get(from, to, ref)
    return row && toMessage(row)
  }

  private reload(): void {
    for (const group of this.groups) group.committed = noRows()
    for (const row of this.sql.logRows.all()) {
      // A group this version does not have (another version wrote the row) is moved with the whole log.
      note(this.groups[row.grp % MOVE_GROUPS]!.committed, row.sender, row.recipient, row.mid, row.ref, toMessage(row), row.msg.length)
    }
  }
}
