// In-process Presence: the single-node engine, and several "nodes" in one process (tests)
// when their instances share one LocalPresenceState. No leases: an in-process node cannot
// die without taking the state with it.
import type { Presence, PresenceEntry } from './presence.js'

/** What the instances of one in-process "cluster" share. */
export class LocalPresenceState {
  /** Sessions by id. Entries are frozen: a reader that mutates one fails loudly. */
  readonly byId = new Map<string, Readonly<PresenceEntry>>()
  /**
   * Sessions by uid, as copy-on-write arrays: sessionsOf runs on every send, and a uid
   * almost always has one or two sessions, so a short array beats a nested Map.
   */
  readonly byUid = new Map<string, ReadonlyArray<Readonly<PresenceEntry>>>()

  put(entry: PresenceEntry): void {
    const frozen = Object.freeze({ ...entry })
    this.byId.set(entry.id, frozen)
    const others = (this.byUid.get(entry.uid) ?? []).filter((e) => e.id !== entry.id)
    this.byUid.set(entry.uid, [...others, frozen])
  }

  delete(id: string): void {
    const entry = this.byId.get(id)
    if (entry === undefined) return
    this.byId.delete(id)
    const rest = (this.byUid.get(entry.uid) ?? []).filter((e) => e.id !== id)
    if (rest.length === 0) this.byUid.delete(entry.uid)
    else this.byUid.set(entry.uid, rest)
  }
}

const NONE: ReadonlyArray<Readonly<PresenceEntry>> = Object.freeze([])

export class LocalPresence implements Presence {
  constructor(
    readonly nodeId: string,
    private readonly state = new LocalPresenceState(),
  ) {}

  async add(entry: PresenceEntry, exclusive: boolean): Promise<PresenceEntry[]> {
    if (entry.node !== this.nodeId) throw new Error(`node ${this.nodeId} cannot add a session of node ${entry.node}`)
    const displaced = exclusive ? (this.state.byUid.get(entry.uid) ?? []).filter((e) => e.id !== entry.id) : []
    for (const old of displaced) this.state.delete(old.id)
    this.state.put(entry)
    return displaced
  }

  async setJoined(entry: PresenceEntry): Promise<void> {
    const current = this.state.byId.get(entry.id)
    // A session replaced or removed meanwhile stays gone.
    if (current !== undefined) this.state.put({ ...current, joined: entry.joined })
  }

  async remove(entry: PresenceEntry): Promise<void> {
    this.state.delete(entry.id)
  }

  async sessionsOf(uid: string): Promise<PresenceEntry[]> {
    const list = this.state.byUid.get(uid)
    return list === undefined ? [] : list.slice()
  }

  /** No copy: the arrays are copy-on-write and the entries frozen. */
  peekSessionsOf(uid: string): ReadonlyArray<Readonly<PresenceEntry>> {
    return this.state.byUid.get(uid) ?? NONE
  }

  async sessions(): Promise<PresenceEntry[]> {
    return [...this.state.byId.values()]
  }

  async missing(entries: PresenceEntry[]): Promise<string[]> {
    return entries.filter((e) => !this.state.byId.has(e.id)).map((e) => e.id)
  }

  async heartbeat(): Promise<void> {}

  async ping(): Promise<void> {}

  /** Like a node shutting down: its sessions leave the shared state at once. */
  async close(): Promise<void> {
    for (const entry of [...this.state.byId.values()]) if (entry.node === this.nodeId) this.state.delete(entry.id)
  }
}
