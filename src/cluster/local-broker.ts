// In-process Broker: instances sharing one LocalBrokerState deliver to each other, like
// nodes on one pub/sub server. Delivery is asynchronous (a microtask per event, so in
// publish order), because a real broker never runs the handler inside publish().
import type { Broker, ClusterEvent, ClusterEventHandler } from './broker.js'
import type { Logger } from '../logger.js'

/** The subscriptions of every instance in one in-process "cluster", by node. */
export class LocalBrokerState {
  readonly handlers = new Map<string, Set<ClusterEventHandler>>()
}

export class LocalBroker implements Broker {
  private readonly mine: Array<[string, ClusterEventHandler]> = []
  private closed = false

  constructor(
    private readonly state = new LocalBrokerState(),
    private readonly logger?: Logger,
  ) {}

  async publish(node: string, event: ClusterEvent): Promise<boolean> {
    if (this.closed) throw new Error('broker closed')
    const listening = (this.state.handlers.get(node)?.size ?? 0) > 0
    // Read the subscribers at delivery time: a node that left meanwhile gets nothing.
    queueMicrotask(() => this.dispatch(node, event))
    return listening
  }

  async broadcast(event: ClusterEvent): Promise<void> {
    if (this.closed) throw new Error('broker closed')
    queueMicrotask(() => {
      for (const node of [...this.state.handlers.keys()]) this.dispatch(node, event)
    })
  }

  private dispatch(node: string, event: ClusterEvent): void {
    const handlers = this.state.handlers.get(node)
    if (handlers === undefined) return
    for (const handler of handlers) {
      try {
        handler(event)
      } catch (err) {
        // One failing handler must not starve the others, nor crash the process from a microtask.
        this.logger?.error({ err, node, kind: event.kind }, 'cluster event handler failed')
      }
    }
  }

  async subscribe(node: string, handler: ClusterEventHandler): Promise<void> {
    if (this.closed) throw new Error('broker closed')
    let handlers = this.state.handlers.get(node)
    if (handlers === undefined) this.state.handlers.set(node, (handlers = new Set()))
    handlers.add(handler)
    this.mine.push([node, handler])
  }

  async ping(): Promise<void> {
    if (this.closed) throw new Error('broker closed')
  }

  async close(): Promise<void> {
    this.closed = true
    for (const [node, handler] of this.mine) {
      const handlers = this.state.handlers.get(node)
      handlers?.delete(handler)
      if (handlers?.size === 0) this.state.handlers.delete(node)
    }
    this.mine.length = 0
  }
}
