// Why a send failed, in words a user can act on, and the one server limit the page must know
// before it sends: MAX_MESSAGE_LENGTH. No route tells it yet, so the page assumes the default
// and learns the server's value from the first 413, whose text names it.
import { CLIENT_CLOSED, Close, Code, type DuetError } from '../src/client/index.js'

/** The server's MAX_MESSAGE_LENGTH as far as the page knows (its default until a 413 says otherwise). */
export const limits = { maxMessageLength: 4096 }

/** A text's length as the server counts it: in code points (an emoji is one). */
export function textLength(text: string): number {
  let length = 0
  for (const _ of text) length++
  return length
}

export interface Failure {
  reason: string
  /** Sending the same text again can work. */
  retry: boolean
}

/** Explains a rejected send; a 413 also teaches the page the server's limit. */
export function sendFailure(error: DuetError, replaced: boolean): Failure {
  switch (error.code) {
    case Code.TOO_LONG: {
      const said = /longer than (\d+) characters/.exec(error.message)
      if (said !== null) limits.maxMessageLength = Number(said[1])
      return { reason: `too long: at most ${limits.maxMessageLength} characters`, retry: false }
    }
    case Code.RATE_LIMITED:
      return { reason: 'too many messages at once: wait a moment', retry: true }
    case Code.INTERNAL:
      return { reason: 'the server could not store it', retry: true }
    case Code.BAD_FRAME:
      return { reason: `refused (${error.message})`, retry: false }
    case CLIENT_CLOSED:
      return replaced
        ? { reason: 'this uid is now open in another tab', retry: true }
        : { reason: 'the connection closed before the server answered', retry: true }
    case Close.POLICY_VIOLATION:
    case Close.ERASED:
      return { reason: `the server closed this connection for good (${error.code})`, retry: false }
    default:
      return { reason: `${error.message} (${error.code})`, retry: true }
  }
}
