// The one place server frames are built and serialised. Every builder here writes a frame's
// fields in the order of the ServerFrame schema (the six seed fields first), and callers only
// add the optional ones after them in that order, so JSON.stringify gives the bytes seed
// clients have always seen (test/ws/frame-bytes.test.ts holds every frame of a session to it).
// JSON.stringify, not a serializer compiled from the schema: it writes the frame into one flat
// string, where fast-json-stringify's concatenations left about 1.5 KB of garbage per message
// (an ack and a push) for the young generation, whose collections are the open loop's tail
// (bench/README.md, "Frames serialised by JSON.stringify").
import { Code, CODE_TABLE } from './codes.js'
import type { ServerFrame } from './schemas.js'
import type { StoredMessage } from '../protocol/message.js'

export function encodeFrame(frame: ServerFrame): string {
  return JSON.stringify(frame)
}

const ERROR_TYPE = new Map<number, string>(CODE_TABLE.filter((c) => c.error && c.type !== 'as sent').map((c) => [c.code, c.type]))

/** A reply to a client frame; `type` is the client's type unless the code table fixes it. */
export function replyFrame(
  code: Code,
  type: string,
  msg: string,
  fields: { uid?: string; touid?: string; ref?: string | undefined } = {},
): ServerFrame {
  const frame: ServerFrame = {
    type: ERROR_TYPE.get(code) ?? type,
    error: code >= 400,
    code,
    msg,
    uid: fields.uid ?? '',
    touid: fields.touid ?? '',
  }
  if (fields.ref !== undefined) frame.ref = fields.ref
  return frame
}

/** Code 200: a chat message pushed to its recipient. */
export function messageFrame(message: StoredMessage, offline: boolean): ServerFrame {
  const frame: ServerFrame = {
    type: 'send',
    error: false,
    code: Code.MESSAGE,
    msg: message.msg,
    uid: message.from,
    touid: message.to,
    mid: message.mid,
    ts: message.ts,
  }
  if (offline) frame.offline = true
  return frame
}

/** Code 205: `reader` has received (or read) every message from `sender` up to `mid`. */
export function receiptFrame(kind: 'delivered' | 'read', reader: string, sender: string, mid: string): ServerFrame {
  return { type: 'receipt', error: false, code: Code.RECEIPT, msg: kind, uid: reader, touid: sender, mid }
}

/** Code 206: `from` is typing to `to`. */
export function typingFrame(from: string, to: string): ServerFrame {
  return { type: 'typing', error: false, code: Code.TYPING, msg: '', uid: from, touid: to }
}

/** Code 207: `uid`'s presence, for the watcher `to`. */
export function presenceFrame(uid: string, to: string, online: boolean): ServerFrame {
  return { type: 'presence', error: false, code: Code.PRESENCE, msg: online ? 'online' : 'offline', uid, touid: to }
}
