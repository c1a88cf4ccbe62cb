// Broker on Redis pub/sub: one channel per node, `${prefix}node:<nodeId>`, and one every node
// listens on for broadcasts, `${prefix}all`; JSON events.
// Pub/sub keeps one publisher's order on a channel and forgets everything while a
// subscriber is disconnected: fine, the contract is best effort and recovery reads the store.
import type { Redis } from 'ioredis'
import type { Broker, ClusterEvent, ClusterEventHandler } from './broker.js'
import { closeRedis, logOutages, openRedis, waitReady } from './redis-connection.js'
import type { Logger } from '../logger.js'

export interface RedisBrokerOptions {
  /** An ioredis instance for publishing (the caller keeps owning it) or a redis:// URL. */
  redis: Redis | string
  /** Channel prefix. Default 'duet:'. */
  prefix?: string
  logger?: Logger
}

export class RedisBroker implements Broker {
  private readonly pub: Redis
  private readonly ownsPub: boolean
  /** A subscribed connection takes no other commands, so it is always a second one, ours. */
  private readonly sub: Redis
  private readonly prefix: string
  private readonly logger: Logger | undefined
  private readonly handlers = new Map<string, Set<ClusterEventHandler>>()

  constructor(options: RedisBrokerOptions) {
    const { redis, owned } = openRedis(options.redis)
    this.pub = redis
    this.ownsPub = owned
    // duplicate() keeps the fail-fast options; ioredis resubscribes it after reconnects.
    this.sub = redis.duplicate()
    this.prefix = options.prefix ?? 'duet:'
    this.logger = options.logger
    if (owned) logOutages(this.pub, this.logger, 'broker')
    logOutages(this.sub, this.logger, 'broker subscriber')
    this.sub.on('message', this.onMessage)
    this.sub.on('ready', this.onReady)
  }

  /** Waits until both connections are up: after that, calls fail fast while Redis is away. */
  async start(readyTimeoutMs = 10_000): Promise<this> {
    await Promise.all([waitReady(this.pub, readyTimeoutMs), waitReady(this.sub, readyTimeoutMs)])
    return this
  }

  async publish(node: string, event: ClusterEvent): Promise<boolean> {
    // PUBLISH answers how many subscribers got it: 0 means the node did not hear it.
    return (await this.pub.publish(this.channel(node), JSON.stringify(event))) > 0
  }

  async broadcast(event: ClusterEvent): Promise<void> {
    await this.pub.publish(this.allChannel(), JSON.stringify(event))
  }

  async subscribe(node: string, handler: ClusterEventHandler): Promise<void> {
    for (const channel of [this.channel(node), this.allChannel()]) {
      let handlers = this.handlers.get(channel)
      if (handlers === undefined) {
        await waitReady(this.sub)
        await this.sub.subscribe(channel)
        handlers = this.handlers.get(channel) ?? new Set()
        this.handlers.set(channel, handlers)
      }
      handlers.add(handler)
    }
  }

  async ping(): Promise<void> {
    // Publishing works but nothing reaches us while the subscriber is down: not ready either way.
    if (this.handlers.size > 0 && this.sub.status !== 'ready') throw new Error('broker subscriber is not connected')
    await this.pub.ping()
  }

  async close(): Promise<void> {
    this.handlers.clear()
    this.sub.off('message', this.onMessage)
    this.sub.off('ready', this.onReady)
    await closeRedis(this.sub)
    if (this.ownsPub) await closeRedis(this.pub)
  }

  private channel(node: string): string {
    return `${this.prefix}node:${node}`
  }

  private allChannel(): string {
    return `${this.prefix}all`
  }

  /**
   * After a reconnect: subscribe again explicitly (so the channels are live before we say so),
   * then tell the handlers that events published meanwhile were lost and must be caught up
   * from the store. The first 'ready' is the initial connection, not a recovery.
   */
  private everReady = false
  private readonly onReady = (): void => {
    if (!this.everReady) {
      this.everReady = true
      return
    }
    const channels = [...this.handlers.keys()]
    if (channels.length === 0) return
    this.sub.subscribe(...channels).then(
      () => {
        // Once per node channel: a handler also listens on the broadcast channel.
        for (const channel of channels) if (channel !== this.allChannel()) this.dispatch(channel, { kind: 'resync' })
      },
      (err: unknown) => this.logger?.warn({ err }, 'broker: resubscribe after reconnect failed'),
    )
  }

  private readonly onMessage = (channel: string, text: string): void => {
    const handlers = this.handlers.get(channel)
    if (handlers === undefined) return
    let event: ClusterEvent
    try {
      event = JSON.parse(text) as ClusterEvent
    } catch (err) {
      this.logger?.warn({ err, channel }, 'broker: dropped an event that is not JSON')
      return
    }
    this.dispatch(channel, event)
  }

  private dispatch(channel: string, event: ClusterEvent): void {
    for (const handler of this.handlers.get(channel) ?? []) {
      try {
        handler(event)
      } catch (err) {
        this.logger?.error({ err, channel, kind: event.kind }, 'cluster event handler failed')
      }
    }
  }
}
