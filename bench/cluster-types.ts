// Shared between the cluster driver (cluster.ts) and its load generator (cluster-load.ts).
// The protocol between them is bench/types.ts's: one LoadEvent per line on stdout; only the
// result is wider, because the cluster bench also measures delivery at the peer.
import type { LatencySummary, LoadConfig, LoadEvent, TrafficResult } from './types.js'

/**
 * Where each pair's two users connect, given the node URLs:
 *   same:  pair i on node i mod N (both users on one node: no cross-node traffic)
 *   split: a_i on the first node, b_i on the second (every message crosses nodes)
 */
export type Placement = 'same' | 'split'

export interface ClusterLoadConfig
  extends Pick<
    LoadConfig,
    'pairs' | 'window' | 'openRate' | 'maxInflight' | 'warmupSec' | 'durationSec' | 'connectConcurrency' | 'msgBytes' | 'sourceAddrs' | 'runId'
  > {
  scenario: 'closed' | 'open'
  /** ws://127.0.0.1:PORT/ws of every node, in node order */
  urls: string[]
  placement: Placement
}

export interface ClusterTrafficResult extends TrafficResult {
  /** pushes (200) received at the peers per second of the window */
  deliveredPerSec: number
  /** send -> push received at the peer (same clock: both ends live in the load generator) */
  delivery: LatencySummary
  /**
   * Messages sent in the whole run that neither got an error reply nor reached the peer by the
   * end of the drain. With `unacked` = 0 these were acked (stored) but not pushed live.
   */
  undelivered: number
  /** pushes that matched no message awaiting delivery: duplicates, or not ours */
  unexpected: number
}

export type ClusterLoadEvent = Exclude<LoadEvent, { event: 'result' }> | { event: 'result'; result: ClusterTrafficResult }
