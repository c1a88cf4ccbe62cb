// The node (Centrifuge's Node): builds the hub's parts and joins them to the cluster. A
// connection's frames go to the frame handler, a message's path is the pipeline, the
// connections themselves are the registry's. Events from other nodes go straight to the part
// they concern. It knows the MessageStore, Presence and Broker contracts only, never an
// implementation: the same code runs one node in process or many on Redis.
import type { TokenVerifier } from '../auth/token-verifier.js'
import type { Broker, ClusterEvent } from '../cluster/broker.js'
import type { Presence } from '../cluster/presence.js'
import type { Logger } from '../logger.js'
import type { Code } from '../protocol/codes.js'
import type { SendFrame } from '../protocol/schemas.js'
import type { MessageStore } from '../store/message-store.js'
import { BacklogSender } from './backlog.js'
import { Binder } from './bind.js'
import { DeliveryMarks } from './delivery-marks.js'
import { FanOut } from './fan-out.js'
import { FrameHandler } from './frame-handler.js'
import type { HubMetrics } from './hub-metrics.js'
import { InFlight } from './in-flight.js'
import { LocalSessions } from './local-sessions.js'
import { LostPushes } from './lost-pushes.js'
import type { OfflineEvents } from './offline-events.js'
import { MessagePipeline, type SendOutcome } from './pipeline.js'
import { Receipts } from './receipts.js'
import { Registry } from './registry.js'
import { Replies } from './replies.js'
import type { Connection, Session } from './session.js'
import { Typing } from './typing.js'
import { Watchers } from './watchers.js'

export const DEFAULT_MAX_WATCHED = 1000

const settled = (): void => undefined

export interface HubOptions {
  store: MessageStore
  presence: Presence
  broker: Broker
  logger: Logger
  nodeId: string
  multiDevice: boolean
  maxMessageLength: number
  /** Checks the bind token; absent or null = open mode, bind trusts `uid`. */
  verifier?: TokenVerifier | null
  /** Frames per second per connection; 0 or absent = unlimited. */
  rateLimit?: number
  /** Token bucket size; default 2 × rateLimit. */
  rateBurst?: number
  /** Bind frames allowed per connection before it is closed with 1008; absent = unlimited. */
  maxBindAttempts?: number
  /** A connection that makes the server keep more than this is closed with 1013; absent = unbounded. */
  slowConsumerBytes?: number
  /** Traffic counters and latencies (plugins/metrics.ts); absent = not measured. */
  metrics?: HubMetrics
  /** READ_RECEIPTS: false turns read receipts off (delivered ones stay). Default true. */
  readReceipts?: boolean
  /** MAX_WATCHED: uids one connection may watch. Default 1000. */
  maxWatched?: number
  /** WEBHOOK_URL: messages for recipients with no live connection get an outbox event. */
  offlineEvents?: OfflineEvents | undefined
}

export class Hub {
  /** This node's connections: the admin routes' view of them, and the way to close them. */
  readonly registry: Registry
  private readonly handler: FrameHandler
  private readonly pipeline: MessagePipeline
  private readonly backlog: BacklogSender
  private readonly inFlight: InFlight
  private readonly receipts: Receipts
  private readonly typing: Typing
  private readonly watchers: Watchers
  private readonly binder: Binder
  private readonly local: LocalSessions
  private readonly lostPushes: LostPushes

  constructor(private readonly options: HubOptions) {
    const local = (this.local = new LocalSessions())
    this.lostPushes = new LostPushes(options.broker)
    const marks = new DeliveryMarks()
    const replies = new Replies(options.logger, options.metrics)
    this.inFlight = new InFlight(options.logger)
    const fanOut = new FanOut({ ...options, local })
    const receipts = (this.receipts = new Receipts({ ...options, fanOut, readReceipts: options.readReceipts ?? true }))
    const typing = (this.typing = new Typing({ ...options, fanOut }))
    const watchers = (this.watchers = new Watchers({ ...options, local }))
    const registry = (this.registry = new Registry({ ...options, local, watchers }))
    this.pipeline = new MessagePipeline({ ...options, local, marks, replies, receipts, fanOut, lostPushes: this.lostPushes })
    this.backlog = new BacklogSender({
      store: options.store,
      marks,
      metrics: options.metrics,
      maxBufferedBytes: options.slowConsumerBytes ?? null,
      evictSlow: (session, buffered) => registry.evictSlow(session, buffered),
      stopping: () => registry.closing,
      replayed: (message, uid) => receipts.delivered(message.from, uid, message.mid),
    })
    const binder = (this.binder = new Binder({ ...options, registry, pipeline: this.pipeline, backlog: this.backlog, replies, receipts }))
    this.handler = new FrameHandler({
      ...options,
      registry,
      binder,
      pipeline: this.pipeline,
      replies,
      inFlight: this.inFlight,
      receipts,
      typing,
      watchers,
      maxWatched: options.maxWatched ?? DEFAULT_MAX_WATCHED,
    })
  }

  /** Starts receiving this node's cluster events (deliveries and closes from other nodes). */
  async start(): Promise<void> {
    await this.options.broker.subscribe(this.options.nodeId, (event) => this.onClusterEvent(event))
  }

  /** A new connection from the transport. */
  open(connection: Connection, remoteAddress: string): Session {
    return this.registry.open(connection, remoteAddress, this.handler.rateFor())
  }

  /** One text frame from the client. */
  handle(session: Session, data: string): void {
    this.handler.handle(session, data)
  }

  /** A frame the transport refused before parsing (binary, for one). */
  refuse(session: Session, code: Code, msg: string): void {
    this.handler.refuse(session, code, msg)
  }

  /** The connection went away. */
  close(session: Session): void {
    this.registry.close(session)
  }

  /**
   * Looks again at the watched uids believed online elsewhere: a node that died told no one.
   * Run periodically (every third of the presence lease).
   */
  refreshPresence(): void {
    this.watchers.refresh()
  }

  /**
   * A message on `from`'s behalf that no connection sent (POST /admin/messages), validated
   * as a `send` frame is (schema, length): stored, pushed, counted unread. Shutdown waits for it.
   */
  sendFrom(from: string, frame: SendFrame): Promise<SendOutcome> {
    const sending = this.pipeline.sendFrom(from, frame)
    this.inFlight.track(sending.then(settled, settled)) // its failure is the caller's to report
    return sending
  }

  /**
   * Erases `uid` (DELETE /admin/users/:uid): closes their connections on every node (4003),
   * deletes every message to or from them, and closes again whatever bound meanwhile.
   * Resolves with how many messages went. Rejects, having deleted nothing, without presence.
   */
  async eraseUser(uid: string): Promise<number> {
    await this.registry.closeUser(uid)
    const erased = await this.options.store.eraseUser(uid)
    await this.registry.closeUser(uid).catch((err: unknown) => {
      this.options.logger.warn({ err, uid }, 'presence unavailable: connections bound during the erase left open elsewhere')
    })
    return erased
  }

  private onClusterEvent(event: ClusterEvent): void {
    switch (event.kind) {
      case 'deliver':
        this.pipeline.fromNode(event)
        return
      case 'resync':
        this.inFlight.track(this.resync())
        return
      case 'catchup':
        for (const session of this.local.of(event.uid) ?? []) this.inFlight.track(this.catchUp(session))
        return
      case 'close':
        this.registry.onClusterClose(event)
        return
      case 'receipt':
        this.receipts.fromNode(event)
        return
      case 'typing':
        this.typing.fromNode(event)
        return
      case 'presence':
        this.watchers.onChange(event.uid)
        return
      case 'carbon':
        this.pipeline.carbonFromNode(event)
        return
    }
  }

  /** Events were lost while the broker was away: push each local session what it missed, and tell watchers what changed. */
  private async resync(): Promise<void> {
    this.watchers.refresh(true)
    const bound = this.registry.bound().filter((s) => s.held === null)
    this.options.logger.info({ sessions: bound.length }, 'broker back: catching up missed deliveries')
    for (const session of bound) await this.catchUp(session)
  }

  /**
   * Pushes a bound connection what was not pushed to it. Live messages that come meanwhile are
   * held for after it, as during a bind's replay: mids stay in ascending order, none twice.
   */
  private async catchUp(session: Session): Promise<void> {
    if (session.held !== null || session.closed || session.uid === null) return
    session.beginHold()
    await this.binder.replay(session, session.uid, undefined, false)
  }

  /** Shutdown: refuse new frames, tell every client, wait for in-flight store work. */
  async shutdown(): Promise<void> {
    this.registry.closing = true
    this.lostPushes.close()
    await this.inFlight.idle()
    this.registry.closeAll()
  }
}
