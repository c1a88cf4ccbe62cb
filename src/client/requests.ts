// The client's requests the server has not answered yet, by ref. They go out again, with the
// same ref, after every re-bind (the server dedupes sends by (uid, ref)), and each is settled
// by the reply that echoes its ref: its success code resolves it, any other code rejects it.
import { Code } from '../protocol/codes.js'
import type { ExitFrame, JoinFrame, SendFrame, ServerFrame } from '../protocol/schemas.js'
import { DuetError } from './duet-error.js'

export type RequestFrame = (SendFrame | JoinFrame | ExitFrame) & { ref: string }

interface PendingRequest {
  frame: RequestFrame
  /** The success code that answers it: 204, 202 or 203. */
  expects: number
  resolve: (frame: ServerFrame) => void
  reject: (error: DuetError) => void
}

export class PendingRequests {
  private readonly byRef = new Map<string, PendingRequest>()

  /** Waits for the reply to `frame`; the caller sends it (now, or after the next bind). */
  add(frame: RequestFrame, expects: number): Promise<ServerFrame> {
    return new Promise((resolve, reject) => this.byRef.set(frame.ref, { frame, expects, resolve, reject }))
  }

  get size(): number {
    return this.byRef.size
  }

  has(ref: string | undefined): boolean {
    return ref !== undefined && this.byRef.has(ref)
  }

  /**
   * Settles the request `frame` answers. True when it was its success; false when it failed,
   * and undefined when it stays pending: a 503 says the server is going away without having
   * processed it, so it goes again after the reconnect.
   */
  settle(frame: ServerFrame): boolean | undefined {
    const request = frame.ref === undefined ? undefined : this.byRef.get(frame.ref)
    if (request === undefined || frame.code === Code.SHUTTING_DOWN) return undefined
    this.byRef.delete(request.frame.ref)
    if (frame.code !== request.expects) {
      request.reject(DuetError.fromFrame(frame))
      return false
    }
    request.resolve(frame)
    return true
  }

  /** What to send again after a re-bind, in the order first sent. */
  frames(): IterableIterator<RequestFrame> {
    return [...this.byRef.values()].map((request) => request.frame).values()
  }

  /** True when every pending request is a send (a join or exit pending will reopen the conversation itself). */
  onlySends(): boolean {
    for (const request of this.byRef.values()) if (request.frame.type !== 'send') return false
    return true
  }

  rejectAll(error: DuetError): void {
    for (const request of this.byRef.values()) request.reject(error)
    this.byRef.clear()
  }
}
