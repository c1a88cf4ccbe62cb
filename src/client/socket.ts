// The slice of a WebSocket the client uses. Both the browser's WebSocket and the `ws`
// package satisfy it, so the client never imports a transport itself.

/** Method-style parameter checking, so ws's and the DOM's richer event types both fit. */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack']

export interface WebSocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  onopen: Handler<unknown> | null
  onmessage: Handler<{ data: unknown }> | null
  onclose: Handler<{ code: number; reason: string }> | null
  onerror: Handler<unknown> | null
}

export type WebSocketConstructor = new (url: string) => WebSocketLike

/** WebSocket.OPEN; the constant is not on every implementation's instances. */
export const OPEN = 1
