// The one place server frames are built and serialised. The serializer is compiled
// once from the ServerFrame schema, so encoding a frame allocates no intermediate tree.
import fastJson from 'fast-json-stringify'
import { Code, CODE_TABLE } from './codes.js'
import { ServerFrame } from './schemas.js'
import type { StoredMessage } from '../protocol/message.js'

export const encodeFrame: (frame: ServerFrame) => string = fastJson(ServerFrame)

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
