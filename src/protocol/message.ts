// A chat message as every side sees it once stored: the store keeps it, frames carry it,
// the broker hands it between nodes. It lives with the protocol so none of them owns it.

/** A stored message. `mid` is a string of digits, strictly increasing per recipient. */
export interface StoredMessage {
  mid: string
  from: string
  to: string
  msg: string
  /** Server time the message was stored, ms since epoch. */
  ts: number
  read: boolean
}
