// This node's bound sessions by uid: the connections live delivery writes to.
import type { Session } from './session.js'

export class LocalSessions {
  private readonly byUid = new Map<string, Session[]>()

  /** Adds a bound session; with `exclusive`, takes out and returns the uid's other sessions. */
  add(session: Session, exclusive: boolean): Session[] {
    const uid = session.uid!
    const existing = this.byUid.get(uid)
    if (existing === undefined) {
      this.byUid.set(uid, [session])
      return []
    }
    if (!exclusive) {
      existing.push(session)
      return []
    }
    this.byUid.set(uid, [session])
    return existing
  }

  remove(session: Session): void {
    const uid = session.uid
    if (uid === null) return
    const list = this.byUid.get(uid)
    if (list === undefined) return
    const rest = list.filter((s) => s !== session)
    if (rest.length === 0) this.byUid.delete(uid)
    else this.byUid.set(uid, rest)
  }

  of(uid: string): readonly Session[] | undefined {
    return this.byUid.get(uid)
  }

  has(uid: string): boolean {
    return this.byUid.has(uid)
  }

  uids(): string[] {
    return [...this.byUid.keys()]
  }

  clear(): void {
    this.byUid.clear()
  }
}
