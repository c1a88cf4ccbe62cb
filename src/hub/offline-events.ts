// What the message pipeline (pipeline.ts) tells the offline webhook.
import type { StoredMessage } from '../protocol/message.js'

/**
 * The offline webhook's side of the pipeline (src/webhook/dispatcher.ts). A message whose
 * recipient has no live connection anywhere, per the lookup before its append, is stored with
 * its event, in one transaction. For WebSocket and server-side sends alike.
 */
export interface OfflineEvents {
  /** A message was stored with its event: send it now. */
  stored(): void
  /**
   * A message stored as going to a live connection reached none (the recipient left during
   * the write): its event is written now, after the message.
   */
  missed(message: StoredMessage): void
}
