// Live presence (code 207): the uids each connection watches, and who is told when one of them
// comes online or goes offline anywhere in the cluster. "Online" = at least one live session
// per presence. A node whose uid gains its first local session or loses its last broadcasts
// that the uid changed; every node with watchers of it looks presence up again and tells them
// if their answer changed. A node that dies broadcasts nothing: refresh() (run every third of
// the presence lease) looks again at the watched uids believed online, and presence drops a
// dead node's sessions with its lease.
import type { Broker } from '../cluster/broker.js'
import type { Presence } from '../cluster/presence.js'
import type { Logger } from '../logger.js'
import { Code } from '../protocol/codes.js'
import { encodeFrame, presenceFrame } from '../protocol/frames.js'
import type { HubMetrics } from './hub-metrics.js'
import type { LocalSessions } from './local-sessions.js'
import type { Session } from './session.js'

export interface WatchersOptions {
  presence: Presence
  broker: Broker
  logger: Logger
  local: LocalSessions
  metrics?: HubMetrics | undefined
}

interface Watched {
  /** This node's connections watching the uid. */
  sessions: Set<Session>
  /** What they were told last; null before the first look. */
  online: boolean | null
  /** A look is under way; `again` = another change came meanwhile, look once more after it. */
  looking: Promise<boolean> | null
  again: boolean
}

export class Watchers {
  private readonly watched = new Map<string, Watched>()

  constructor(private readonly options: WatchersOptions) {}

  /** How many uids the session watches. */
  count(session: Session): number {
    return session.watching?.size ?? 0
  }

  /** Adds `uid` to the session's watch list; resolves with its state now, which the caller answers with. */
  async watch(session: Session, uid: string): Promise<boolean> {
    let watched = this.watched.get(uid)
    if (watched === undefined) {
      watched = { sessions: new Set(), online: null, looking: null, again: false }
      this.watched.set(uid, watched)
    }
    // Watching before the look: a change during it is told (after the answer, in frame order or not).
    ;(session.watching ??= new Set()).add(uid)
    watched.sessions.add(session)
    const online = await this.look(uid, session)
    return online
  }

  unwatch(session: Session, uid: string): void {
    session.watching?.delete(uid)
    const watched = this.watched.get(uid)
    if (watched === undefined) return
    watched.sessions.delete(session)
    if (watched.sessions.size === 0) this.watched.delete(uid)
  }

  /** The session closed: it watches nothing any more. */
  closed(session: Session): void {
    if (session.watching === null) return
    for (const uid of session.watching) this.unwatch(session, uid)
    session.watching = null
  }

  /** A uid got its first session on this node or lost its last: every node's watchers look again. */
  changed(uid: string): void {
    this.options.broker.broadcast({ kind: 'presence', uid }).catch((err: unknown) => {
      this.options.logger.debug({ err, uid }, 'presence change not broadcast: told on this node only')
      this.onChange(uid)
    })
  }

  /** A node said `uid` changed: look again if anyone here watches it. */
  onChange(uid: string): void {
    if (this.watched.has(uid)) void this.look(uid, null)
  }

  /**
   * Looks again at the watched uids believed online with no session here: their node may have
   * died. `all`: every watched uid (the broker was away: changes may have gone unheard).
   */
  refresh(all = false): void {
    for (const [uid, watched] of this.watched) {
      if (all || (watched.online === true && !this.options.local.has(uid))) void this.look(uid, null)
    }
  }

  /**
   * Reads the uid's state and tells its watchers when it changed, but `asker` (answered by the
   * caller). One look per uid at a time; a change during it makes one more.
   */
  private async look(uid: string, asker: Session | null): Promise<boolean> {
    const watched = this.watched.get(uid)
    if (watched === undefined) return this.isOnline(uid)
    if (watched.looking !== null) {
      watched.again = true
      await watched.looking.catch(() => undefined)
      // The look after it, if one is due, is started by whoever ran the first: wait for it too.
      if (watched.looking !== null) await watched.looking.catch(() => undefined)
      return watched.online ?? false
    }
    const looking = this.lookOnce(uid, watched, asker)
    watched.looking = looking
    try {
      return await looking
    } finally {
      watched.looking = null
    }
  }

  private async lookOnce(uid: string, watched: Watched, asker: Session | null): Promise<boolean> {
    let online: boolean
    do {
      watched.again = false
      online = await this.isOnline(uid)
      if (online !== watched.online) {
        const told = watched.online !== null
        watched.online = online
        if (told || asker === null) this.tell(uid, watched, online, asker)
      }
    } while (watched.again)
    return online
  }

  private tell(uid: string, watched: Watched, online: boolean, except: Session | null): void {
    let sent = 0
    for (const session of watched.sessions) {
      if (session === except || session.uid === null) continue
      if (session.send(encodeFrame(presenceFrame(uid, session.uid, online)))) sent++
    }
    if (sent > 0) this.options.metrics?.frameOut('presence', Code.PRESENCE, sent)
  }

  private async isOnline(uid: string): Promise<boolean> {
    if (this.options.local.has(uid)) return true
    try {
      return (await this.options.presence.sessionsOf(uid)).length > 0
    } catch (err) {
      this.options.logger.debug({ err, uid }, 'presence unavailable: state from this node only')
      return false
    }
  }
}
