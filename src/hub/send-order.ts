// A sender's messages keep their order through the two steps of the pipeline that can answer
// late: the presence lookup before the store write (so they are stored, and numbered, in the
// order sent) and the lookup before a cross-node publish (so another node pushes them in that
// order). Each step goes at once when nothing is pending, and otherwise waits its turn behind
// the previous send of the same connection. The turns are the session's storeTurn and
// publishTurn; nothing else touches them.
import type { PresenceEntry } from '../cluster/presence.js'
import type { Session } from './session.js'

/** A uid's sessions as presence reports them. */
export type Sessions = ReadonlyArray<Readonly<PresenceEntry>>

/** True when the store write may begin now: the lookup has answered and no earlier send waits. */
export function storeNow(session: Session, lookup: Sessions | Promise<Sessions>): lookup is Sessions {
  return !(lookup instanceof Promise) && session.storeTurn === null
}

export interface StoreTurn {
  /** The lookup's answer, once the previous send's write has been submitted too. */
  entries: Promise<Sessions>
  /** Call once this send's write is submitted (or has failed): the next send may go. */
  submitted(): void
}

/** Takes the connection's next store turn; `lookup` must not reject. */
export function storeTurn(session: Session, lookup: Sessions | Promise<Sessions>): StoreTurn {
  const previous = session.storeTurn
  let submitted!: () => void
  const turn = new Promise<void>((resolve) => (submitted = resolve))
  session.storeTurn = turn
  const entries = (async () => {
    const list = await lookup
    if (previous !== null) await previous
    if (session.storeTurn === turn) session.storeTurn = null
    return list
  })()
  return { entries, submitted }
}

/** True when the publish may happen now: the lookup has answered and no earlier publish waits. */
export function publishNow(session: Session, entries: Sessions | Promise<Sessions>): entries is Sessions {
  return !(entries instanceof Promise) && session.publishTurn === null
}

/**
 * Publishes once the lookup has answered (null when it failed) and the connection's previous
 * publish was made; resolves when done.
 */
export function publishTurn(session: Session, entries: Sessions | Promise<Sessions>, publish: (list: Sessions | null) => void): Promise<void> {
  const previous = session.publishTurn
  let turn: Promise<void> | null = null
  turn = (async () => {
    // A failure was logged by the send moments ago: only a push here counts.
    const list = await Promise.resolve(entries).catch(() => null)
    // Its own failure reached its sender's send; it must not stop this publish.
    if (previous !== null) await previous.catch(() => undefined)
    if (session.publishTurn === turn) session.publishTurn = null
    publish(list)
  })()
  session.publishTurn = turn
  return turn
}
