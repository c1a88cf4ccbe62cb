// What the hub reports about its traffic. plugins/metrics.ts implements it with
// prom-client; the core only knows this interface, so it never imports a metrics library.

export interface HubMetrics {
  /** A connection was opened. */
  connectionOpened(): void
  /** A client frame arrived: its type, or "" when it could not be parsed. */
  frameIn(type: string): void
  /** `count` connections were sent a server frame with this type and code. */
  frameOut(type: string, code: number, count?: number): void
  /** A store append took `seconds`; `ok` is false when it failed. */
  storeWrite(seconds: number, ok: boolean): void
  /** A live message was pushed to a connection `seconds` after it was stored. */
  delivered(seconds: number): void
}
