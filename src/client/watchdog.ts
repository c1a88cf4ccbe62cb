// Notices a link that died without a close (a laptop that slept, a NAT that forgot the
// connection). An open socket says nothing of it: the server's pings are answered by the
// browser unseen, and a close would wait for TCP to give up. So while the client waits for an
// answer (its bind's, or a request's) and the server stays silent for `timeoutMs`, the link is
// presumed dead. Time with nothing to wait for does not count, and performance.now() is used,
// as the wall clock may be set back or forward.

const now = (): number => performance.now()

/** The longest a timer can wait (setTimeout's limit, in ms). */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1

export class AnswerWatchdog {
  private lastHeard = 0
  private waitingSince = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  /**
   * @param awaiting whether the client waits for an answer right now
   * @param dead called when the silence has lasted `timeoutMs`, and still lasts a short grace later
   */
  constructor(
    private readonly timeoutMs: number | false,
    private readonly awaiting: () => boolean,
    private readonly dead: (silentMs: number) => void,
  ) {
    if (timeoutMs !== false && !(Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= MAX_TIMEOUT_MS)) {
      throw new RangeError(`answerTimeoutMs must be false or an integer from 1 to ${MAX_TIMEOUT_MS}, got ${timeoutMs}`)
    }
  }

  /** The server sent something. */
  heard(): void {
    this.lastHeard = now()
  }

  /** The client begins to wait: a bind went out, or a request when none was pending. */
  begin(): void {
    this.stop()
    this.waitingSince = now()
    this.arm()
  }

  /** One more thing to wait for: the watch runs if it does not already. */
  arm(): void {
    if (this.timeoutMs === false || this.timer !== undefined || !this.awaiting()) return
    const timeout = this.timeoutMs
    this.timer = setTimeout(() => this.check(timeout), Math.max(1, timeout - this.quiet()))
  }

  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private quiet(): number {
    return now() - Math.max(this.lastHeard, this.waitingSince)
  }

  private check(timeout: number): void {
    this.timer = undefined
    if (!this.awaiting()) return
    if (this.quiet() < timeout) return this.arm()
    // The timer may have fired late, after a turn that held the event loop (a busy page, a tab
    // that was frozen) while the answer already waited to be read: look again once that has
    // had its turn.
    const suspectedAt = now()
    this.timer = setTimeout(
      () => {
        this.timer = undefined
        if (!this.awaiting()) return
        if (this.lastHeard >= suspectedAt) return this.arm()
        this.dead(this.quiet())
      },
      Math.min(1000, Math.ceil(timeout / 4)),
    )
  }
}
