// The error a request rejects with: the server's code (see src/protocol/codes.ts), or
// CLIENT_CLOSED when the client was closed before the server answered.
import type { ServerFrame } from '../protocol/schemas.js'

/** Not a server code: the client was closed (or gave up) before an answer came. */
export const CLIENT_CLOSED = 0

export class DuetError extends Error {
  override name = 'DuetError'

  constructor(
    readonly code: number,
    message: string,
    /** The frame `type` the error answers ("" when unknown). */
    readonly type = '',
  ) {
    super(message)
  }

  static fromFrame(frame: ServerFrame): DuetError {
    return new DuetError(frame.code, frame.msg, frame.type)
  }
}
