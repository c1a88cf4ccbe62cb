// The opt-in signals (receipts, typing, presence, carbons) as the client reads them. Codes and
// frame shapes are the protocol's (src/protocol/codes.ts, schemas.ts); the parsers below accept
// only frames that carry every field they read, so a server without the features (or a future
// one with other frames) is ignored rather than misread.
import type { ServerFrame } from '../protocol/schemas.js'

export const FEATURES = ['receipts', 'typing', 'presence', 'carbons'] as const
export type Feature = (typeof FEATURES)[number]

/** The accepted features of a 201: the known names it lists, [] when it lists none. */
export function acceptedFeatures(frame: ServerFrame): Feature[] {
  const listed: unknown = (frame as { features?: unknown }).features
  if (!Array.isArray(listed)) return []
  return FEATURES.filter((name) => listed.includes(name))
}

const MID = /^[0-9]{1,20}$/

/** A 205 frame's receipt, or undefined when the frame is not a well-formed one. */
export function parseReceipt(frame: ServerFrame): { peer: string; status: 'delivered' | 'read'; mid: string } | undefined {
  if (frame.msg !== 'delivered' && frame.msg !== 'read') return undefined
  if (typeof frame.uid !== 'string' || frame.uid === '' || typeof frame.mid !== 'string' || !MID.test(frame.mid)) return undefined
  return { peer: frame.uid, status: frame.msg, mid: frame.mid }
}

/** A 207 frame's presence, or undefined when the frame is not a well-formed one. */
export function parsePresence(frame: ServerFrame): { peer: string; online: boolean } | undefined {
  if (frame.msg !== 'online' && frame.msg !== 'offline') return undefined
  if (typeof frame.uid !== 'string' || frame.uid === '') return undefined
  return { peer: frame.uid, online: frame.msg === 'online' }
}
