// The cluster contracts against the in-process engines: several nodes sharing one state object.
import { LocalBroker, LocalBrokerState } from '../../src/cluster/local-broker.js'
import { LocalPresence, LocalPresenceState } from '../../src/cluster/local-presence.js'
import type { Broker } from '../../src/cluster/broker.js'
import type { Presence } from '../../src/cluster/presence.js'
import { brokerContract } from './broker-contract.js'
import { presenceContract } from './presence-contract.js'

presenceContract('local', async (t) => {
  const state = new LocalPresenceState()
  const nodes: Presence[] = []
  t.teardown(() => Promise.all(nodes.map((p) => p.close())))
  return {
    node: async (nodeId) => {
      const presence = new LocalPresence(nodeId, state)
      nodes.push(presence)
      return presence
    },
  }
})

brokerContract('local', async (t) => {
  const state = new LocalBrokerState()
  const brokers: Broker[] = []
  t.teardown(() => Promise.all(brokers.map((b) => b.close())))
  return {
    broker: async () => {
      const broker = new LocalBroker(state)
      brokers.push(broker)
      return broker
    },
  }
})
