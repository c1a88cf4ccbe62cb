// Presence in Redis, so any node answers "who is online" without asking the others.
//
// Keys, under `prefix` (default 'duet:'):
//   presence:leases       zset   node -> lease expiry, ms on Redis's clock (renewed by heartbeat)
//   presence:user:<uid>   hash   sessionId -> JSON PresenceEntry   (the uid's owner record)
//   presence:node:<node>  hash   sessionId -> JSON PresenceEntry   (to collect a dead node's sessions)
// Readers drop the sessions of nodes whose lease ran out; heartbeats delete them.
//
// Redis is not the source of truth for this node's own sessions: we keep a copy of every
// session this instance added and has not removed, and write it back whenever Redis may have
// lost it (a reconnect, which may follow a restart: Redis here keeps nothing on disk; or our
// lease lapsing, after which another node collects our sessions).
import type { Redis } from 'ioredis'
import { LeaseCache } from './lease-cache.js'
import type { Presence, PresenceEntry } from './presence.js'
import { closeRedis, logOutages, openRedis, waitReady } from './redis-connection.js'
import * as lua from './redis-presence-scripts.js'
import type { Logger } from '../logger.js'

export interface RedisPresenceOptions {
  /** An ioredis instance (the caller keeps owning it) or a redis:// URL. */
  redis: Redis | string
  nodeId: string
  /** Key prefix, so tests and deployments sharing a Redis never collide. Default 'duet:'. */
  prefix?: string
  /** How long a node stays present without a heartbeat. Default 15000; heartbeat every leaseMs/3. */
  leaseMs?: number
  logger?: Logger
}

type Script = (...args: Array<string | number>) => Promise<unknown>
type ScriptName = 'add' | 'setJoined' | 'remove' | 'heartbeat' | 'leases' | 'reregister' | 'deregister'

/** Exactly the contract's fields, whatever else the caller's object carries. */
const pick = (e: PresenceEntry): PresenceEntry => ({
  id: e.id,
  uid: e.uid,
  node: e.node,
  joined: e.joined ?? null,
  connectedAt: e.connectedAt,
  remoteAddress: e.remoteAddress,
  ...(e.features ? { features: e.features } : {}),
})

const toJson = (e: PresenceEntry): string => JSON.stringify(pick(e))

const parseEntry = (json: string): PresenceEntry => pick(JSON.parse(json) as PresenceEntry)

export class RedisPresence implements Presence {
  readonly nodeId: string
  readonly leaseMs: number
  private readonly redis: Redis
  private readonly owned: boolean
  private readonly logger: Logger | undefined
  private readonly leasesKey: string
  private readonly userPrefix: string
  private readonly nodePrefix: string
  private readonly scripts: Record<ScriptName, Script>
  /** This instance's own sessions: what Redis must hold for this node. */
  private readonly own = new Map<string, { entry: PresenceEntry; exclusive: boolean }>()
  private readonly leases: LeaseCache
  private refreshing: Promise<void> | null = null
  private registering: Promise<void> = Promise.resolve()
  private closed = false

  constructor(options: RedisPresenceOptions) {
    const { redis, owned } = openRedis(options.redis)
    this.redis = redis
    this.owned = owned
    this.nodeId = options.nodeId
    this.leaseMs = options.leaseMs ?? 15_000
    this.logger = options.logger
    const prefix = options.prefix ?? 'duet:'
    this.leasesKey = `${prefix}presence:leases`
    this.userPrefix = `${prefix}presence:user:`
    this.nodePrefix = `${prefix}presence:node:`
    this.leases = new LeaseCache(Math.max(50, this.leaseMs / 5))
    const define = (name: string, spec: lua.ScriptSpec): Script => {
      const command = `duetPresence${name}`
      this.redis.defineCommand(command, { numberOfKeys: spec.keys, lua: spec.lua })
      return (this.redis as unknown as Record<string, Script>)[command]!.bind(this.redis)
    }
    this.scripts = {
      add: define('Add', lua.ADD),
      setJoined: define('SetJoined', lua.SET_JOINED),
      remove: define('Remove', lua.REMOVE),
      heartbeat: define('Heartbeat', lua.HEARTBEAT),
      leases: define('Leases', lua.LEASES),
      reregister: define('Reregister', lua.REREGISTER),
      deregister: define('Deregister', lua.DEREGISTER),
    }
    if (this.owned) logOutages(this.redis, this.logger, 'presence')
    this.redis.on('ready', this.onReady)
  }

  /** Waits for Redis, drops what a previous run of this node id left behind, takes the lease. */
  async start(readyTimeoutMs = 10_000): Promise<this> {
    await waitReady(this.redis, readyTimeoutMs)
    await this.reregister()
    return this
  }

  async add(entry: PresenceEntry, exclusive: boolean): Promise<PresenceEntry[]> {
    if (entry.node !== this.nodeId) throw new Error(`node ${this.nodeId} cannot add a session of node ${entry.node}`)
    // Recorded before the write: if Redis is down now, the session is written back on reconnect.
    this.own.set(entry.id, { entry: pick(entry), exclusive })
    const [lapsed, displacedJson] = (await this.scripts.add(
      this.leasesKey, this.userPrefix + entry.uid, this.nodePrefix + this.nodeId,
      this.nodeId, this.leaseMs, this.nodePrefix, entry.id, toJson(entry), exclusive ? '1' : '0',
    )) as [number, string[]]
    const displaced = displacedJson.map(parseEntry)
    for (const old of displaced) if (old.node === this.nodeId) this.own.delete(old.id)
    if (lapsed === 1) this.restoreInBackground('lease had lapsed')
    return displaced
  }

  async setJoined(entry: PresenceEntry): Promise<void> {
    const mine = this.own.get(entry.id)
    if (mine !== undefined) mine.entry = { ...mine.entry, joined: entry.joined }
    const joined = JSON.stringify(entry.joined ?? null)
    await this.scripts.setJoined(this.userPrefix + entry.uid, entry.id, joined, this.nodePrefix)
  }

  async remove(entry: PresenceEntry): Promise<void> {
    this.own.delete(entry.id)
    await this.scripts.remove(this.userPrefix + entry.uid, this.nodePrefix + entry.node, entry.id)
  }

  async sessionsOf(uid: string): Promise<PresenceEntry[]> {
    const entries = (await this.redis.hvals(this.userPrefix + uid)).map(parseEntry)
    if (entries.length > 0 && this.leases.needsRefresh(entries.map((e) => e.node))) await this.refreshLeases()
    return entries.filter((e) => this.leases.isLive(e.node))
  }

  async sessions(): Promise<PresenceEntry[]> {
    await this.refreshLeases()
    const nodes = this.leases.liveNodes()
    const pipeline = this.redis.pipeline()
    for (const node of nodes) pipeline.hvals(this.nodePrefix + node)
    return (await execPipeline<string[]>(pipeline)).flat().map(parseEntry)
  }

  async missing(entries: PresenceEntry[]): Promise<string[]> {
    if (entries.length === 0) return []
    // Our lease first: had it lapsed, another node collected our sessions, and every one of
    // them would look replaced. The heartbeat writes them back (and a write-back another
    // heartbeat began is waited for too), so what is missing after it was replaced or removed.
    await this.heartbeat()
    await this.registering
    const absent = await this.absent(entries)
    if (absent.length === 0) return []
    // Absent can also mean collected, with our lease renewed since: a heartbeat that timed out
    // here while Redis stalled past the lease still ran in Redis when it woke, after another
    // node's heartbeat had dropped our sessions, so the next one finds no lapse. Writing our
    // sessions back settles it: only those whose uid bound on another live node stay out.
    await this.reregister()
    return (await this.absent(absent)).map((e) => e.id)
  }

  /** The entries Redis does not hold. */
  private async absent(entries: PresenceEntry[]): Promise<PresenceEntry[]> {
    const pipeline = this.redis.pipeline()
    for (const e of entries) pipeline.hexists(this.userPrefix + e.uid, e.id)
    const found = await execPipeline<number>(pipeline)
    return entries.filter((_, i) => found[i] !== 1)
  }

  async heartbeat(): Promise<void> {
    const sentAt = Date.now()
    const [lapsed, now, flat] = (await this.scripts.heartbeat(
      this.leasesKey, this.nodeId, this.leaseMs, this.nodePrefix, this.userPrefix,
    )) as [number, number, string[]]
    this.leases.load(now, flat, sentAt)
    if (lapsed === 1) {
      this.logger?.warn({ sessions: this.own.size }, 'presence: our lease had lapsed, writing our sessions back')
      await this.reregister()
    }
  }

  async ping(): Promise<void> {
    await this.redis.ping()
  }

  /** Writes this node's sessions back into Redis exactly (see REREGISTER). Runs one at a time. */
  reregister(): Promise<void> {
    const run = this.registering.catch(() => {}).then(() => this.register())
    this.registering = run
    return run
  }

  /** A graceful leave: this node's sessions and lease vanish now rather than at lease expiry. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.redis.off('ready', this.onReady)
    if (this.redis.status === 'ready') {
      const leave = this.scripts.deregister(this.leasesKey, this.nodePrefix + this.nodeId, this.nodeId, this.userPrefix)
      await leave.catch((err: unknown) => this.logger?.warn({ err }, 'presence: could not leave; our lease runs out'))
    }
    if (this.owned) await closeRedis(this.redis)
  }

  private async register(): Promise<void> {
    // Snapshot and send with no await in between: commands go out in order on one
    // connection, so an add() issued after this snapshot is applied after the script.
    const args: string[] = []
    for (const { entry, exclusive } of this.own.values()) {
      args.push(entry.id, entry.uid, toJson(entry), exclusive ? '1' : '0')
    }
    const lost = (await this.scripts.reregister(
      this.leasesKey, this.nodePrefix + this.nodeId, this.nodeId, this.leaseMs, this.userPrefix, ...args,
    )) as string[]
    if (lost.length > 0) this.logger?.info({ lost }, 'presence: sessions bound elsewhere meanwhile, not restored')
  }

  private readonly onReady = (): void => {
    // 'ready' follows every reconnect; Redis may have restarted empty meanwhile.
    if (!this.closed) this.restoreInBackground('redis connection ready')
  }

  private restoreInBackground(why: string): void {
    this.reregister().catch((err: unknown) => {
      this.logger?.warn({ err, why }, 'presence: could not write our sessions back')
    })
  }

  private refreshLeases(): Promise<void> {
    // Concurrent readers share one round trip.
    this.refreshing ??= (async () => {
      try {
        const sentAt = Date.now()
        const [now, flat] = (await this.scripts.leases(this.leasesKey)) as [number, string[]]
        this.leases.load(now, flat, sentAt)
      } finally {
        this.refreshing = null
      }
    })()
    return this.refreshing
  }
}

async function execPipeline<T>(pipeline: ReturnType<Redis['pipeline']>): Promise<T[]> {
  const results = (await pipeline.exec()) ?? []
  return results.map(([err, value]) => {
    if (err) throw err
    return value as T
  })
}
