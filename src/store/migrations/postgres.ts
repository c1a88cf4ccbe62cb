// PostgreSQL schema, versioned in duet_migrations. Runs under a transaction-scoped advisory
// lock, so several nodes starting at once apply each migration exactly once.
import type { ClientBase } from 'pg'

/** Quotes an identifier (schema name) for interpolation into SQL. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}

// Each entry takes the quoted schema name.
const MIGRATIONS: ReadonlyArray<(s: string) => string> = [
  // 1: the mid counter and messages. One counter row, not a sequence: the batch transaction
  // takes its row lock, so batches commit one at a time across nodes and mid order is
  // commit order (a `since` reader can never see mid N+1 before mid N).
  (s) => `
    CREATE TABLE ${s}.duet_seq (
      id boolean PRIMARY KEY DEFAULT true CHECK (id),
      v  bigint  NOT NULL
    );
    INSERT INTO ${s}.duet_seq (id, v) VALUES (true, 0);
    CREATE TABLE ${s}.duet_messages (
      mid       bigint  PRIMARY KEY,
      sender    text    NOT NULL,
      recipient text    NOT NULL,
      msg       text    NOT NULL,
      ts        bigint  NOT NULL,
      read      boolean NOT NULL,
      delivered boolean NOT NULL,
      ref       text
    );
    -- since / headMid
    CREATE INDEX duet_messages_recipient_mid ON ${s}.duet_messages (recipient, mid);
    -- undelivered, markDelivered
    CREATE INDEX duet_messages_undelivered ON ${s}.duet_messages (recipient, mid) WHERE NOT delivered;
    -- unreadCount, markRead, the unread column of conversations
    CREATE INDEX duet_messages_unread ON ${s}.duet_messages (recipient, sender) WHERE NOT read;
    -- the pair index, one per direction: history merges the two newest-first scans, and
    -- conversations groups each side by peer
    CREATE INDEX duet_messages_sender_pair ON ${s}.duet_messages (sender, recipient, mid);
    CREATE INDEX duet_messages_recipient_pair ON ${s}.duet_messages (recipient, sender, mid);
    -- idempotent resend
    CREATE UNIQUE INDEX duet_messages_sender_ref ON ${s}.duet_messages (sender, ref) WHERE ref IS NOT NULL;`,
  // 2: a ref is unique per conversation (sender, recipient), as in the other stores: a client
  // that numbers its refs per conversation must not have a message to one peer taken for a
  // resend of another's.
  (s) => `
    DROP INDEX ${s}.duet_messages_sender_ref;
    CREATE UNIQUE INDEX duet_messages_sender_ref ON ${s}.duet_messages (sender, recipient, ref) WHERE ref IS NOT NULL;`,
  // 3: each user's conversations by last activity, so a page of the list is one index range
  // of `limit` rows instead of a walk over every partner. Kept by statement triggers (one
  // upsert per batch insert), so every writer keeps it, nodes of the previous version too:
  // they may go on running through this migration. CREATE TRIGGER locks out inserts until
  // this transaction commits, so the fill below misses none.
  (s) => `
    CREATE TABLE ${s}.duet_conversations (
      owner    text   NOT NULL,
      peer     text   NOT NULL,
      last_mid bigint NOT NULL,
      PRIMARY KEY (owner, peer)
    );
    CREATE INDEX duet_conversations_recent ON ${s}.duet_conversations (owner, last_mid);
    CREATE FUNCTION ${s}.duet_conversations_added() RETURNS trigger LANGUAGE plpgsql AS $duet$
    BEGIN
      INSERT INTO ${s}.duet_conversations AS c (owner, peer, last_mid)
        SELECT owner, peer, max(mid) FROM (
          SELECT recipient AS owner, sender AS peer, mid FROM added
          UNION ALL
          SELECT sender, recipient, mid FROM added WHERE sender <> recipient
        ) sides GROUP BY owner, peer
      ON CONFLICT (owner, peer) DO UPDATE SET last_mid = greatest(c.last_mid, excluded.last_mid);
      RETURN NULL;
    END $duet$;
    -- A conversation whose newest message went takes the newest left, or goes.
    CREATE FUNCTION ${s}.duet_conversations_removed() RETURNS trigger LANGUAGE plpgsql AS $duet$
    BEGIN
      UPDATE ${s}.duet_conversations c SET last_mid = newest.mid
      FROM (
        SELECT hit.owner, hit.peer, greatest(
          (SELECT max(mid) FROM ${s}.duet_messages WHERE recipient = hit.owner AND sender = hit.peer),
          (SELECT max(mid) FROM ${s}.duet_messages WHERE recipient = hit.peer AND sender = hit.owner)) AS mid
        FROM ${s}.duet_conversations hit
        JOIN (SELECT sender AS owner, mid FROM removed UNION ALL SELECT recipient, mid FROM removed) gone
          ON hit.owner = gone.owner AND hit.last_mid = gone.mid
      ) newest
      WHERE c.owner = newest.owner AND c.peer = newest.peer AND newest.mid IS NOT NULL;
      DELETE FROM ${s}.duet_conversations c
      USING (SELECT sender AS owner, mid FROM removed UNION ALL SELECT recipient, mid FROM removed) gone
      WHERE c.owner = gone.owner AND c.last_mid = gone.mid;
      RETURN NULL;
    END $duet$;
    CREATE TRIGGER duet_conversations_added AFTER INSERT ON ${s}.duet_messages
      REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION ${s}.duet_conversations_added();
    CREATE TRIGGER duet_conversations_removed AFTER DELETE ON ${s}.duet_messages
      REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION ${s}.duet_conversations_removed();
    INSERT INTO ${s}.duet_conversations (owner, peer, last_mid)
      SELECT owner, peer, max(mid) FROM (
        SELECT recipient AS owner, sender AS peer, mid FROM ${s}.duet_messages
        UNION ALL
        SELECT sender, recipient, mid FROM ${s}.duet_messages WHERE sender <> recipient
      ) sides GROUP BY owner, peer;`,
  // 4: the webhook outbox (postgres-outbox.ts): one event per message, keyed by its mid, gone
  // with it by the cascade. Only pending events are in the due index, only failed ones in the
  // failed one. state: 0 pending, 1 sent, 2 failed. The tag makes this schema's event ids its
  // own (outbox.ts eventId).
  (s) => `
    CREATE TABLE ${s}.duet_webhook_events (
      mid             bigint   PRIMARY KEY REFERENCES ${s}.duet_messages (mid) ON DELETE CASCADE,
      ts              bigint   NOT NULL,
      state           smallint NOT NULL DEFAULT 0,
      attempts        integer  NOT NULL DEFAULT 0,
      due_at          bigint   NOT NULL,
      claim           text,
      lease_until     bigint   NOT NULL DEFAULT 0,
      last_error      text,
      last_attempt_at bigint
    );
    CREATE INDEX duet_webhook_events_due ON ${s}.duet_webhook_events (due_at) WHERE state = 0;
    CREATE INDEX duet_webhook_events_failed ON ${s}.duet_webhook_events (mid) WHERE state = 2;
    CREATE TABLE ${s}.duet_webhook_tag (
      id  boolean PRIMARY KEY DEFAULT true CHECK (id),
      tag text    NOT NULL
    );
    INSERT INTO ${s}.duet_webhook_tag (tag) VALUES (substr(md5(random()::text || clock_timestamp()::text), 1, 16));`,
]

/** Brings the schema up to `target` (the latest unless a test wants an older one). */
export async function migratePostgres(client: ClientBase, schema: string, target = MIGRATIONS.length): Promise<void> {
  const s = quoteIdent(schema)
  await client.query('BEGIN')
  try {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`duet:migrate:${schema}`])
    // Checked first: CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when it exists.
    const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
    if (found.rowCount === 0) await client.query(`CREATE SCHEMA ${s}`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.duet_migrations (
         version    integer     PRIMARY KEY,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    )
    const done = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.duet_migrations`)
    for (let v = done.rows[0]?.v ?? 0; v < target; v++) {
      await client.query(MIGRATIONS[v]!(s))
      await client.query(`INSERT INTO ${s}.duet_migrations (version) VALUES ($1)`, [v + 1])
    }
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  }
}
