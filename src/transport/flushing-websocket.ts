// The WebSocket class the server's ws builds for each connection. ws closes a connection
// itself, through close(), when the peer's close frame arrives or a frame breaks the protocol;
// frames batched earlier in the same turn (batched-writes.ts) would then be dropped behind its
// close frame after the hub counted them as sent. This hook lets them go out first.
// That ws calls the public close() for its own closes, with the socket still OPEN, is its
// behaviour, not its documented API: package.json pins ws to 8.23.x, and
// test/ws/contract-edges.test.ts fails if an upgrade changes it.
import { WebSocket } from 'ws'

export class FlushingWebSocket extends WebSocket {
  /** Runs before every close, ws's own included: set by the connection batching this socket. */
  beforeClose: (() => void) | null = null

  override close(code?: number, data?: string | Buffer): void {
    this.beforeClose?.()
    super.close(code, data)
  }
}
