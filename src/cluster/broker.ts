// Broker contract: deliver an event to one node, wherever in the cluster it runs.
// In-process and Redis pub/sub implementations pass one contract suite.
import type { StoredMessage } from '../protocol/message.js'

export type ClusterEvent =
  /**
   * Push a stored message to `to`'s connections on the receiving node. `storedDelivered` is
   * the delivered flag it was stored with: the receiving node corrects it to what happened
   * there (absent from an older node: taken as true). `origin`: the node that stored it (absent
   * from an older node). `forwarded`: sent on by a node that found `to` gone from it to another
   * one during the write (pipeline.ts fromNode); never forwarded again.
   */
  | { kind: 'deliver'; to: string; message: StoredMessage; storedDelivered?: boolean; origin?: string; forwarded?: boolean }
  /** Close one session on the receiving node (replaced by a newer bind, kicked by an admin, or its user erased). */
  | { kind: 'close'; sessionId: string; reason: 'replaced' | 'kicked' | 'erased' }
  /** From the broker itself: the subscription was down and is back; events may have been missed. */
  | { kind: 'resync' }
  /**
   * The sending node could not push `uid` messages it stored (the broker was away): push
   * `uid`'s connections on the receiving node what they were not pushed (hub.ts catchUp).
   */
  | { kind: 'catchup'; uid: string }
  /**
   * `to` has received (or read) every message from `from` up to `mid`: for `from`'s connections
   * on the receiving node that asked for receipts.
   */
  | { kind: 'receipt'; receipt: 'delivered' | 'read'; from: string; to: string; mid: string }
  /** `from` is typing to `to`: for `to`'s connections on the receiving node that asked for typing. */
  | { kind: 'typing'; from: string; to: string }
  /** Broadcast: `uid` became online or offline on the sending node; watchers look again. */
  | { kind: 'presence'; uid: string }
  /** A message its sender (`message.from`) sent from a connection on another node: for their connections here that asked for carbons. */
  | { kind: 'carbon'; message: StoredMessage }

export type ClusterEventHandler = (event: ClusterEvent) => void

export interface Broker {
  /**
   * Sends `event` to node `node`. Best effort: recovery never depends on it. Resolves false
   * when no subscriber of that node received it (the node is gone, or not connected now).
   */
  publish(node: string, event: ClusterEvent): Promise<boolean>

  /**
   * Sends `event` to every subscribed node, the sender's included. Best effort, like publish:
   * for signals that any node may care about (a presence change).
   */
  broadcast(event: ClusterEvent): Promise<void>

  /** Receives the events addressed to node `node` (this node), and every broadcast. */
  subscribe(node: string, handler: ClusterEventHandler): Promise<void>

  /** Rejects when the broker is unreachable: for /readyz. */
  ping(): Promise<void>

  close(): Promise<void>
}
