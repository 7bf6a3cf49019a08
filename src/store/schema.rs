//! Versioned migrations. `PRAGMA user_version` holds the number of migrations applied; opening
//! an older file applies the missing ones in order, each in its own IMMEDIATE transaction, so a
//! crash mid-upgrade leaves the file at the last complete version.

/// Each entry upgrades the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14, V15, V16, V17, V18,
];

/// The schema version this build writes.
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// Version 1: contacts, identities, conversations, messages, tags, events, outbox, cursors, FTS.
pub const V1: &str = r#"
CREATE TABLE contacts (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    vip         INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    last_channel TEXT
);

CREATE TABLE identities (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    source      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (kind, value)
);
CREATE INDEX identities_contact ON identities(contact_id);

CREATE TABLE conversations (
    id            INTEGER PRIMARY KEY,
    contact_id    INTEGER NOT NULL REFERENCES contacts(id),
    status        TEXT NOT NULL DEFAULT 'open',
    priority      TEXT NOT NULL DEFAULT 'normal',
    assignee      TEXT,
    subject       TEXT,
    channels      TEXT NOT NULL DEFAULT '',
    last_channel  TEXT NOT NULL,
    last_activity INTEGER NOT NULL,
    last_preview  TEXT NOT NULL DEFAULT '',
    last_direction TEXT NOT NULL DEFAULT 'in',
    message_count INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    resolved_at   INTEGER,
    snoozed_until INTEGER
);
CREATE INDEX conversations_activity ON conversations(last_activity DESC, id DESC);
CREATE INDEX conversations_status ON conversations(status, last_activity DESC, id DESC);
CREATE INDEX conversations_assignee ON conversations(assignee, status, last_activity DESC, id DESC);
CREATE INDEX conversations_contact ON conversations(contact_id, last_activity DESC);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    contact_id      INTEGER NOT NULL REFERENCES contacts(id),
    channel         TEXT NOT NULL,
    account         TEXT NOT NULL DEFAULT '',
    external_id     TEXT,
    direction       TEXT NOT NULL,
    author          TEXT NOT NULL,
    subject         TEXT,
    body            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    stored_at       INTEGER NOT NULL,
    delivery        TEXT,
    delivery_error  TEXT,
    meta            TEXT
);
CREATE UNIQUE INDEX messages_external ON messages(channel, account, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX messages_contact_time ON messages(contact_id, created_at, id);
CREATE INDEX messages_conversation_time ON messages(conversation_id, created_at, id);

CREATE TABLE tags (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    tag             TEXT NOT NULL,
    PRIMARY KEY (conversation_id, tag)
) WITHOUT ROWID;
CREATE INDEX tags_by_tag ON tags(tag);

-- Append-only: the audit log and the change feed other processes follow.
CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              INTEGER NOT NULL,
    actor           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    conversation_id INTEGER,
    contact_id      INTEGER,
    message_id      INTEGER,
    data            TEXT
);
CREATE INDEX events_conversation ON events(conversation_id, id) WHERE conversation_id IS NOT NULL;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    message_id      INTEGER NOT NULL UNIQUE REFERENCES messages(id),
    channel         TEXT NOT NULL,
    account         TEXT NOT NULL DEFAULT '',
    recipient       TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);

-- Channel positions (IMAP UIDs, Telegram offsets), written in the same transaction as the
-- messages they delivered.
CREATE TABLE cursors (
    channel TEXT NOT NULL,
    account TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (channel, account, key)
) WITHOUT ROWID;

CREATE VIRTUAL TABLE messages_fts USING fts5(
    subject, body, content='messages', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, subject, body)
        VALUES ('delete', old.id, old.subject, old.body);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF subject, body ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, subject, body)
        VALUES ('delete', old.id, old.subject, old.body);
    INSERT INTO messages_fts(rowid, subject, body) VALUES (new.id, new.subject, new.body);
END;

CREATE VIRTUAL TABLE contacts_fts USING fts5(
    name, content='contacts', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER contacts_fts_insert AFTER INSERT ON contacts BEGIN
    INSERT INTO contacts_fts(rowid, name) VALUES (new.id, new.name);
END;
CREATE TRIGGER contacts_fts_delete AFTER DELETE ON contacts BEGIN
    INSERT INTO contacts_fts(contacts_fts, rowid, name) VALUES ('delete', old.id, old.name);
END;
CREATE TRIGGER contacts_fts_update AFTER UPDATE OF name ON contacts BEGIN
    INSERT INTO contacts_fts(contacts_fts, rowid, name) VALUES ('delete', old.id, old.name);
    INSERT INTO contacts_fts(rowid, name) VALUES (new.id, new.name);
END;
"#;

/// Version 2: per-agent drafts (the composer saves as you type, so nothing is lost on Esc or a
/// crash) and the `merged_into` trail that keeps identity merges explainable.
pub const V2: &str = r#"
CREATE TABLE drafts (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id),
    agent           TEXT NOT NULL,
    kind            TEXT NOT NULL DEFAULT 'reply',
    channel         TEXT,
    body            TEXT NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, agent)
) WITHOUT ROWID;
ALTER TABLE contacts ADD COLUMN merged_into INTEGER REFERENCES contacts(id);
"#;

/// Version 3: an identity the customer cannot be reached on (they blocked the bot): the reason,
/// NULL while reachable.
pub const V3: &str = r#"
ALTER TABLE identities ADD COLUMN unreachable TEXT;
"#;

/// The triggers that keep `messages_fts` (v4 on) in step with `messages`.
macro_rules! fts_triggers {
    () => {
        r#"
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts(rowid, subject, body, sender)
        VALUES (new.id, new.subject, new.body, new.sender);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, subject, body, sender)
        VALUES ('delete', old.id, old.subject, old.body, old.sender);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF subject, body, sender ON messages BEGIN
    INSERT INTO messages_fts(messages_fts, rowid, subject, body, sender)
        VALUES ('delete', old.id, old.subject, old.body, old.sender);
    INSERT INTO messages_fts(rowid, subject, body, sender)
        VALUES (new.id, new.subject, new.body, new.sender);
END;
"#
    };
}

/// Version 4: search that stays fast at a million messages.
/// - `messages.sender`: who wrote the message, as words (the author's name and, for a customer's
///   message, the address, phone number or id it came from), indexed as the `sender` column of
///   `messages_fts`. `from:` is then a full-text term: `refund from:acme.com` intersects two
///   doclists inside FTS5 instead of checking the contact of every `refund` (270 ms at a
///   million). Messages stored before v4 get their contact's identities of the channel's kind.
/// - `messages_fts` with prefix indexes for 2 and 3 characters: `in*` read and merged the
///   doclists of every term starting with "in" (31 ms on a million messages; 0.4 ms with the
///   index). About 200 bytes per message. Rebuilt from `messages` (17 s per million).
/// - `messages_time`: date-range searches walk this index instead of every newer message.
pub const V4: &str = concat!(
    r#"
CREATE INDEX messages_time ON messages(created_at, id);

ALTER TABLE messages ADD COLUMN sender TEXT;
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;
UPDATE messages SET sender = CASE WHEN direction = 'in' THEN author || coalesce(' ' || (
        SELECT group_concat(i.value, ' ') FROM identities i
        WHERE i.contact_id = messages.contact_id AND i.kind = messages.channel), '')
    ELSE author END;

CREATE VIRTUAL TABLE messages_fts USING fts5(
    subject, body, sender, content='messages', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2', prefix='2 3'
);
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
"#,
    fts_triggers!()
);

/// Version 5: `from:` by a whole address or domain is one full-text term. `sender` keeps its
/// words and adds, for each word with punctuation inside, the word glued from each of its
/// alphanumeric runs to its end, marked `qz` so glued words never share a prefix with plain
/// ones (`ann.lee@acme.com` adds `qzannleeacmecom qzleeacmecom qzacmecom`; see
/// [`crate::store::search`]). `from:acme.com` was the phrase `acme com*`, and `com*` is in
/// nearly every message: `refund from:example42.com` took 16 ms at a million messages (its
/// `com*` doclist) where it is now a term with a few thousand rows. The column is recomputed
/// (the `braid_sender_index` function the store registers for the upgrade) and the index
/// rebuilt: about 20 s per million messages.
pub const V5: &str = concat!(
    r#"
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
UPDATE messages SET sender = braid_sender_index(sender) WHERE sender IS NOT NULL;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
"#,
    fts_triggers!()
);

/// Version 6: identifiers a customer CLAIMED but nobody verified (an email typed into the web
/// chat widget). A claim never merges contacts and replies never go to it; the profile shows it
/// ("claims to be ann@x.org (unverified)") and an agent links or dismisses it (`:claim`).
/// Before v6 a typed email became an identity at once (anyone could join any customer's
/// contact by typing their address): such an identity on a contact that never wrote by email
/// becomes a claim again. A merge it already caused is not undone (the events keep the trail).
pub const V6: &str = r#"
CREATE TABLE identity_claims (
    id          INTEGER PRIMARY KEY,
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    source      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (contact_id, kind, value)
);
CREATE INDEX identity_claims_value ON identity_claims(kind, value);

INSERT OR IGNORE INTO identity_claims(contact_id, kind, value, source, created_at)
    SELECT i.contact_id, i.kind, i.value, i.source, i.created_at FROM identities i
    WHERE i.kind = 'email' AND i.source = 'web chat (given by the customer)'
      AND NOT EXISTS (SELECT 1 FROM messages m
                      WHERE m.contact_id = i.contact_id AND m.channel = 'email');
DELETE FROM identities
    WHERE kind = 'email' AND source = 'web chat (given by the customer)'
      AND EXISTS (SELECT 1 FROM identity_claims c
                  WHERE c.contact_id = identities.contact_id AND c.kind = identities.kind
                    AND c.value = identities.value);
"#;

/// Version 7: the team a conversation belongs to (`billing`, `sales`...), set by the channel or
/// account it came in on; NULL is no team: shared, every agent sees it. An agent whose scope is
/// a list of teams sees the conversations of those teams, the unteamed ones and those assigned
/// to them (see [`crate::store::Scope`]). The index serves a team's queue (`team:NAME`, a
/// team-only scope's counts) in the queue's order, like `conversations_status`.
pub const V7: &str = r#"
ALTER TABLE conversations ADD COLUMN team TEXT;
CREATE INDEX conversations_team ON conversations(team, status, last_activity DESC, id DESC);
"#;

/// Version 8: notifications, kept per agent on the server (see [`crate::store::notifications`]).
/// - `notifications`: one row per (agent, causing event, kind), so deriving the same event
///   twice adds nothing. `kind` is `mention`, `assigned`, `message`, `sla_warning` or
///   `sla_breach` (the last two for the SLA rules). `contact_name` and `excerpt` are what the
///   agent could see when it was made (the list never reads a conversation again, so a
///   million rows page by the index alone). `read_at` NULL: unread.
/// - `notifications_agent` serves an agent's newest-first pages (keyset on `id`);
///   `notifications_unread`, partial, their unread count and unread-only pages.
/// - `derivations`: how far a server has derived something from the events table (the row
///   `notifications`), advanced in the same transaction as what it derived. No row yet (an
///   upgraded store): the server starts at the newest event, not at the whole history.
pub const V8: &str = r#"
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    agent           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    event_id        INTEGER NOT NULL,
    conversation_id INTEGER,
    message_id      INTEGER,
    actor           TEXT NOT NULL,
    at              INTEGER NOT NULL,
    read_at         INTEGER,
    contact_name    TEXT NOT NULL DEFAULT '',
    excerpt         TEXT NOT NULL DEFAULT '',
    UNIQUE (agent, event_id, kind)
);
CREATE INDEX notifications_agent ON notifications(agent, id);
CREATE INDEX notifications_unread ON notifications(agent, id) WHERE read_at IS NULL;
-- An agent sees the conversations they are mentioned in (the scope's condition asks this
-- index, one probe per conversation outside their teams).
CREATE INDEX notifications_mentions ON notifications(agent, conversation_id)
    WHERE kind = 'mention';

CREATE TABLE derivations (
    name       TEXT PRIMARY KEY,
    last_event INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Version 9: the audit log is append-only in the store itself, and pages by agent instantly.
/// - `events_actor`: `braid audit --agent bob` walks bob's events newest first in the index
///   instead of checking every event of the log.
/// - `events_at`: a jump to a date (`:audit` on `2026-11-03`) finds its event in the index.
/// - No event can be deleted, and no event's id, time, actor, kind, subject contact,
///   message or detail can be changed: SQLite aborts the statement (and the caller's
///   transaction rolls back) with a message saying so, whatever code runs it. Its
///   conversation may change, only to point at a conversation that exists: merging two
///   contacts folds one conversation into the other, and the events of the folded one follow
///   it (its `contacts_merged` event keeps the folded ids), so the timeline and audit of the
///   surviving conversation stay whole.
pub const V9: &str = r#"
CREATE INDEX events_actor ON events(actor, id);
CREATE INDEX events_at ON events(at, id);
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events BEGIN
    SELECT RAISE(ABORT, 'the events table is the append-only audit log: an event cannot be deleted');
END;
CREATE TRIGGER events_append_only_update
BEFORE UPDATE OF id, at, actor, kind, contact_id, message_id, data ON events BEGIN
    SELECT RAISE(ABORT, 'the events table is the append-only audit log: an event cannot be changed');
END;
CREATE TRIGGER events_follow_a_merge
BEFORE UPDATE OF conversation_id ON events
WHEN new.conversation_id IS NULL
  OR NOT EXISTS (SELECT 1 FROM conversations WHERE id = new.conversation_id) BEGIN
    SELECT RAISE(ABORT, 'the events table is the append-only audit log: an event''s conversation changes only when its conversation is folded into another one');
END;
"#;

/// Version 10: webhooks and per-channel consent.
/// - `webhook_inbox`: a webhook's verified body, written before braid answers 200 and deleted
///   in the transaction that ingests it, so an acknowledged delivery is never lost (a crash
///   between the two replays it; ingest is idempotent on the message id). A report that
///   cannot be applied yet (a status for a send whose id is not recorded yet) waits for
///   `next_at`.
/// - `consent`: a customer's STOP / START on a channel (SMS): per channel, since a phone number
///   that stops SMS still writes on WhatsApp.
pub const V10: &str = r#"
CREATE TABLE webhook_inbox (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    body        BLOB NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    error       TEXT
);
CREATE INDEX webhook_inbox_due ON webhook_inbox(next_at, id);

CREATE TABLE consent (
    channel    TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    opted_out  INTEGER NOT NULL,
    keyword    TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (channel, kind, value)
) WITHOUT ROWID;
"#;

/// Version 11: workflow (rules, SLAs, tasks, scheduled sends).
/// - `conversations.waiting_since`: when the oldest customer message we have not answered
///   arrived (NULL: nothing waits on us); `last_reply_at`: our newest reply. Kept by
///   `insert_message`; together they say "waiting on us for X" and "waiting on the customer
///   for X" without reading the messages table (time-based rules, SLA, the queue's order).
/// - `conversations.sla_*`: the SLA policy a rule applied, the next deadline (`sla_due`, ms),
///   which target it is (`first_response`, `next_response`, `resolution`) and whether it was
///   warned / breached (`sla_state`), so a sweep walks `conversations_sla` only.
/// - `rule_fired`: a time-based rule fires once per conversation and episode (`key`: the
///   `waiting_since`, reply time or snooze time it fired for), across restarts.
/// - `tasks`: to-dos on a contact or conversation (call back, send the contract), with a due
///   time, an assignee and a state.
pub const V11: &str = r#"
ALTER TABLE conversations ADD COLUMN waiting_since INTEGER;
ALTER TABLE conversations ADD COLUMN last_reply_at INTEGER;
ALTER TABLE conversations ADD COLUMN sla_policy TEXT;
ALTER TABLE conversations ADD COLUMN sla_due INTEGER;
ALTER TABLE conversations ADD COLUMN sla_target TEXT;
ALTER TABLE conversations ADD COLUMN sla_state TEXT;
UPDATE conversations SET last_reply_at = (
    SELECT max(m.created_at) FROM messages m
    WHERE m.conversation_id = conversations.id AND m.direction = 'out');
UPDATE conversations SET waiting_since = (
    SELECT min(m.created_at) FROM messages m
    WHERE m.conversation_id = conversations.id AND m.direction = 'in'
      AND m.created_at > coalesce(conversations.last_reply_at, -1))
WHERE status <> 'resolved';
CREATE INDEX conversations_waiting ON conversations(waiting_since)
    WHERE waiting_since IS NOT NULL;
CREATE INDEX conversations_sla ON conversations(sla_due)
    WHERE sla_due IS NOT NULL;

CREATE TABLE rule_fired (
    rule            TEXT NOT NULL,
    conversation_id INTEGER NOT NULL,
    key             INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    PRIMARY KEY (rule, conversation_id, key)
) WITHOUT ROWID;

-- rules: waiting on the customer (we replied last) for the time-based rules' sweep; round
-- robin: the turn (a counter per team) in which a rule last gave each agent of a team a conversation.
CREATE INDEX conversations_replied ON conversations(last_reply_at)
    WHERE waiting_since IS NULL AND last_reply_at IS NOT NULL;
CREATE TABLE rule_rotation (
    team    TEXT NOT NULL,
    agent   TEXT NOT NULL,
    last_at INTEGER NOT NULL,
    PRIMARY KEY (team, agent)
) WITHOUT ROWID;

CREATE TABLE tasks (
    id              INTEGER PRIMARY KEY,
    contact_id      INTEGER REFERENCES contacts(id),
    conversation_id INTEGER REFERENCES conversations(id),
    kind            TEXT NOT NULL DEFAULT 'todo',
    title           TEXT NOT NULL,
    due_at          INTEGER,
    assignee        TEXT,
    team            TEXT,
    state           TEXT NOT NULL DEFAULT 'open',
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    closed_at       INTEGER,
    closed_by       TEXT,
    notified_at     INTEGER
);
CREATE INDEX tasks_open_due ON tasks(state, due_at);
CREATE INDEX tasks_assignee ON tasks(assignee, state, due_at);
CREATE INDEX tasks_contact ON tasks(contact_id, state);
-- bulk: `u` (undo) skips the changes an agent already undid (or whose undo was refused as
-- overtaken): their `undone` / `refused` events name the change in data.undid.
CREATE INDEX events_undid ON events(json_extract(data, '$.undid'))
    WHERE kind IN ('undone', 'refused');

-- sla: the sweep reads only the deadlines not yet breached (breached ones stay in
-- conversations_sla until answered or resolved, and would be read again every sweep).
CREATE INDEX conversations_sla_pending ON conversations(sla_due)
    WHERE sla_due IS NOT NULL AND sla_state IS NOT 'breached';
-- sla: the contact's VIP flag on its conversations, kept by triggers, so the triage order
-- (breached, urgent, VIP, SLA due, oldest waiting, newest activity) is one index walk.
ALTER TABLE conversations ADD COLUMN contact_vip INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET contact_vip =
    coalesce((SELECT vip FROM contacts WHERE id = conversations.contact_id), 0);
CREATE TRIGGER conversations_vip_insert AFTER INSERT ON conversations BEGIN
    UPDATE conversations SET contact_vip =
        coalesce((SELECT vip FROM contacts WHERE id = new.contact_id), 0)
    WHERE id = new.id;
END;
CREATE TRIGGER conversations_vip_contact AFTER UPDATE OF contact_id ON conversations BEGIN
    UPDATE conversations SET contact_vip =
        coalesce((SELECT vip FROM contacts WHERE id = new.contact_id), 0)
    WHERE id = new.id;
END;
CREATE TRIGGER contacts_vip_change AFTER UPDATE OF vip ON contacts BEGIN
    UPDATE conversations SET contact_vip = new.vip WHERE contact_id = new.id;
END;
-- sla: the triage sort key, ascending: band 0..7 = (not breached, not urgent, not VIP) as
-- bits, then the deadline and the oldest waiting message (none: last), then newest activity.
ALTER TABLE conversations ADD COLUMN triage_band INTEGER GENERATED ALWAYS AS (
    (CASE WHEN sla_state = 'breached' THEN 0 ELSE 4 END)
  + (CASE WHEN priority = 'urgent' THEN 0 ELSE 2 END)
  + (CASE WHEN contact_vip <> 0 THEN 0 ELSE 1 END)) VIRTUAL;
ALTER TABLE conversations ADD COLUMN triage_due INTEGER GENERATED ALWAYS AS (
    coalesce(sla_due, 9223372036854775807)) VIRTUAL;
ALTER TABLE conversations ADD COLUMN triage_wait INTEGER GENERATED ALWAYS AS (
    coalesce(waiting_since, 9223372036854775807)) VIRTUAL;
ALTER TABLE conversations ADD COLUMN triage_act INTEGER GENERATED ALWAYS AS (
    -last_activity) VIRTUAL;
CREATE INDEX conversations_triage ON conversations(
    status, triage_band, triage_due, triage_wait, triage_act, id);
CREATE INDEX conversations_triage_assignee ON conversations(
    assignee, status, triage_band, triage_due, triage_wait, triage_act, id);
CREATE INDEX conversations_triage_team ON conversations(
    team, status, triage_band, triage_due, triage_wait, triage_act, id);
"#;

/// Version 12: reporting facts, kept as conversations change (the `reports` derivation follows
/// the events table; `crate::reports` says what each fact means).
/// - `report_facts`: one row per duration (first/next response, resolution, customer wait),
///   per opening / reopening / resolution, per message, per SLA target met or missed, per
///   survey sent or answered. `at`: when it happened; `value`: ms, 1, a score; `business`:
///   ms within the team's hours. `report_facts_scan` holds every column a report reads, so a
///   metric over a range is one index range; `report_facts_conversation` serves the tag slice.
/// - `report_daily`: the facts summed per day (in the report zone: the workspace's first
///   `[[hours]]` zone, else UTC; `report_settings.zone`), metric, channel, team, agent and
///   label (an SLA policy, a survey score): a count, the sums of the durations and their
///   histograms (`reports::hist`, 1% buckets). A year of a busy workspace is a few thousand
///   rows per metric, whatever the traffic.
/// - `report_state`: where each conversation's clocks stand between events.
///
/// The `reports` row of `derivations` is absent until the first server backfills the history.
pub const V12: &str = r#"
CREATE TABLE report_facts (
    id              INTEGER PRIMARY KEY,
    metric          TEXT NOT NULL,
    at              INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL,
    channel         TEXT NOT NULL,
    team            TEXT,
    agent           TEXT,
    value           INTEGER NOT NULL,
    business        INTEGER,
    label           TEXT
);
CREATE INDEX report_facts_scan ON report_facts(
    metric, at, channel, team, agent, value, business, label, conversation_id);
CREATE INDEX report_facts_conversation ON report_facts(conversation_id, metric, at);

CREATE TABLE report_daily (
    metric        TEXT NOT NULL,
    day           INTEGER NOT NULL,
    channel       TEXT NOT NULL,
    team          TEXT NOT NULL DEFAULT '',
    agent         TEXT NOT NULL DEFAULT '',
    label         TEXT NOT NULL DEFAULT '',
    n             INTEGER NOT NULL,
    total         INTEGER NOT NULL DEFAULT 0,
    business      INTEGER NOT NULL DEFAULT 0,
    hist          BLOB,
    hist_business BLOB,
    PRIMARY KEY (metric, day, channel, team, agent, label)
) WITHOUT ROWID;

-- The same, per tag the conversation carries now (kept as tags come and go), for the tag
-- slice.
CREATE TABLE report_daily_tags (
    metric        TEXT NOT NULL,
    day           INTEGER NOT NULL,
    tag           TEXT NOT NULL,
    channel       TEXT NOT NULL,
    team          TEXT NOT NULL DEFAULT '',
    agent         TEXT NOT NULL DEFAULT '',
    label         TEXT NOT NULL DEFAULT '',
    n             INTEGER NOT NULL,
    total         INTEGER NOT NULL DEFAULT 0,
    business      INTEGER NOT NULL DEFAULT 0,
    hist          BLOB,
    hist_business BLOB,
    PRIMARY KEY (metric, day, tag, channel, team, agent, label)
) WITHOUT ROWID;

CREATE TABLE report_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE report_state (
    conversation_id INTEGER PRIMARY KEY,
    open            INTEGER NOT NULL,
    episode_start   INTEGER,
    first_replied   INTEGER NOT NULL,
    waiting_since   INTEGER,
    waiting_channel TEXT,
    replied_at      INTEGER,
    channel         TEXT NOT NULL,
    assignee        TEXT,
    team            TEXT,
    policy          TEXT,
    breached        TEXT NOT NULL DEFAULT '',
    tags            TEXT NOT NULL DEFAULT ''
);
"#;

/// Version 13: CSAT: one survey per conversation, ever.
/// - `csat`: the row is written when the survey is decided (in the transaction that queues
///   its message), so a conversation resolved again, or a server restarted, never sends a
///   second one. `message_id`: the survey message (NULL: none went out, `skipped` says why,
///   e.g. the contact opted out). `answer_until`: a text reply on `channel` until then is read
///   as the answer. `score` / `comment` / `answered_at` / `answer_channel`: the first answer
///   (it is final). `due_at`: a delayed survey (`[csat] delay`) not sent yet (no message, not
///   skipped): sent then if the conversation is still resolved, dropped if it was reopened.
pub const V13: &str = r#"
-- No foreign key: merging contacts folds and deletes conversations; a survey row of a
-- folded conversation stays as history and is read through a join.
CREATE TABLE csat (
    conversation_id INTEGER PRIMARY KEY,
    channel         TEXT NOT NULL,
    message_id      INTEGER,
    decided_at      INTEGER NOT NULL,
    answer_until    INTEGER NOT NULL,
    skipped         TEXT,
    score           INTEGER,
    comment         TEXT,
    answer_channel  TEXT,
    answered_at     INTEGER,
    due_at          INTEGER
);
CREATE INDEX csat_pending ON csat(answer_until) WHERE score IS NULL AND message_id IS NOT NULL;
-- A delayed survey waits here (no message, not skipped) until `due_at`.
CREATE INDEX csat_due ON csat(due_at) WHERE message_id IS NULL AND skipped IS NULL;
"#;

/// Version 14: merges you can take back, and the identity each customer message came from.
/// - `merges`: one row per contact merge, conversation merge or split (`kind`), with its
///   provenance (who, when, why) and in `data` the before-images of the rows it rewrote and
///   the ids it moved, which is what an undo restores (see `store/merges.rs`). `undone_at` /
///   `undone_by`: taken back then, by whom.
/// - `messages.identity_id`: the identity a customer's message came through (NULL for ours,
///   notes, and messages stored before v14). After a merge a reply still goes to the number
///   or chat the customer used, and an unmerge sends later messages back with their identity.
/// - `duplicate_dismissals`: pairs of contacts an agent said are not one person (`a` < `b`),
///   so `:duplicates` stops suggesting them.
pub const V14: &str = r#"
CREATE TABLE merges (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind      TEXT NOT NULL,
    target    INTEGER NOT NULL,
    other     INTEGER NOT NULL,
    reason    TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        INTEGER NOT NULL,
    data      TEXT NOT NULL,
    undone_at INTEGER,
    undone_by TEXT
);
CREATE INDEX merges_target ON merges(kind, target);
CREATE INDEX merges_other ON merges(kind, other);

ALTER TABLE messages ADD COLUMN identity_id INTEGER;

CREATE TABLE duplicate_dismissals (
    a     INTEGER NOT NULL,
    b     INTEGER NOT NULL,
    actor TEXT NOT NULL,
    at    INTEGER NOT NULL,
    PRIMARY KEY (a, b)
) WITHOUT ROWID;
"#;

/// Version 15: webhooks out, the durable queue of deliveries. One row
/// per (endpoint, event, kind) the endpoint's filter lets through, written by the `webhooks`
/// derivation in the transaction that moves its cursor; `body` is the JSON sent on every
/// attempt (fixed when the row is written, so a retry sends the same bytes), `delivery` the id
/// a receiver deduplicates on. `state`: `pending` (due at `next_at`), `sending` (an attempt in
/// flight; reset to `pending` when a dispatcher starts, so a crash retries it), `delivered`,
/// `failed` (given up or refused; `braid webhooks retry` makes it pending again).
pub const V15: &str = r#"
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    endpoint        TEXT NOT NULL,
    event_id        INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    delivery        TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    next_at         INTEGER NOT NULL,
    last_attempt_at INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    INTEGER,
    UNIQUE (endpoint, event_id, kind)
);
CREATE INDEX webhook_due ON webhook_deliveries(endpoint, next_at, id)
    WHERE state IN ('pending', 'sending');
CREATE INDEX webhook_state ON webhook_deliveries(endpoint, state);
"#;

/// Version 16: consent per contact and purpose.
/// - `contact_consent`: one state per contact and purpose (`marketing`, `transactional`: an
///   opt-out of transactional messages is an opt-out of everything). No row: never said,
///   allowed. `channel` / `source`: where and how the newest change came.
/// - `consent_history`: every change, newest last: when, how (`keyword`: an SMS STOP, an
///   email "unsubscribe"; `header`: List-Unsubscribe; `command`: Telegram /stop; `block`:
///   the customer blocked the bot; `agent`: an agent recorded it), on which channel and
///   identity, the customer's word (`detail`) and who recorded it (`actor`).
/// - `outbox.purpose`: why a queued message goes, so the dispatcher checks consent again
///   right before the network call (an opt-out between queueing and sending stops it).
///
/// - `events_append_only_update`: also lets a GDPR erasure set an event's data to
///   `{"forgotten":true}` (nothing else changes).
///
/// The per-channel `consent` table (V10) stays: an SMS STOP is a carrier-enforced stop of
/// every SMS to that number, whatever the purpose.
pub const V16: &str = r#"
CREATE TABLE contact_consent (
    contact_id INTEGER NOT NULL,
    purpose    TEXT NOT NULL,
    opted_out  INTEGER NOT NULL,
    channel    TEXT,
    source     TEXT NOT NULL,
    at         INTEGER NOT NULL,
    PRIMARY KEY (contact_id, purpose)
) WITHOUT ROWID;
CREATE INDEX contact_consent_out ON contact_consent(contact_id) WHERE opted_out;

CREATE TABLE consent_history (
    id         INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL,
    purpose    TEXT NOT NULL,
    opted_out  INTEGER NOT NULL,
    channel    TEXT,
    kind       TEXT,
    value      TEXT,
    source     TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    actor      TEXT NOT NULL,
    at         INTEGER NOT NULL
);
CREATE INDEX consent_history_contact ON consent_history(contact_id, at, id);

-- The SMS STOPs recorded before: a marketing opt-out of their contact.
INSERT OR IGNORE INTO contact_consent(contact_id, purpose, opted_out, channel, source, at)
    SELECT i.contact_id, 'marketing', 1, c.channel, 'keyword', max(c.at)
    FROM consent c JOIN identities i ON i.kind = c.kind AND i.value = c.value
    WHERE c.opted_out GROUP BY i.contact_id;
INSERT INTO consent_history(contact_id, purpose, opted_out, channel, kind, value, source,
                            detail, actor, at)
    SELECT i.contact_id, 'marketing', 1, c.channel, c.kind, c.value, 'keyword', c.keyword,
           'migration', c.at
    FROM consent c JOIN identities i ON i.kind = c.kind AND i.value = c.value
    WHERE c.opted_out;

ALTER TABLE outbox ADD COLUMN purpose TEXT NOT NULL DEFAULT 'transactional';

-- GDPR erasure (`braid contact forget`) blanks the data of the events about the person; the
-- audit log stays append-only for everything else.
DROP TRIGGER events_append_only_update;
CREATE TRIGGER events_append_only_update
BEFORE UPDATE OF id, at, actor, kind, contact_id, message_id, data ON events
WHEN NOT (new.data IS '{"forgotten":true}' AND new.id = old.id AND new.at = old.at
          AND new.actor = old.actor AND new.kind = old.kind
          AND new.contact_id IS old.contact_id AND new.message_id IS old.message_id) BEGIN
    SELECT RAISE(ABORT, 'the events table is the append-only audit log: an event cannot be changed');
END;
"#;

/// Version 18: campaigns (drip sequences, see `store/campaign.rs`): a run per start; one enrolment per
/// contact and run (`state`: active, done, left (reason `replied`), excluded / failed (reason),
/// stopped; `step`: the next step; `next_at`: when it is due); one row per step queued, with
/// the slot the channel's pace gave it (`slot_at`, the outbox send time).
pub const V18: &str = r#"
CREATE TABLE campaign_runs (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    started_by  TEXT NOT NULL,
    stopped_at  INTEGER,
    stopped_by  TEXT
);
CREATE INDEX campaign_runs_name ON campaign_runs(name, id);
-- No foreign keys: a merge folds contacts; the history stays.
CREATE TABLE campaign_enrolments (
    run_id      INTEGER NOT NULL,
    contact_id  INTEGER NOT NULL,
    channel     TEXT,
    step        INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER,
    state       TEXT NOT NULL,
    reason      TEXT,
    enrolled_at INTEGER NOT NULL,
    PRIMARY KEY (run_id, contact_id)
) WITHOUT ROWID;
CREATE INDEX campaign_due ON campaign_enrolments(next_at) WHERE state = 'active';
CREATE INDEX campaign_by_contact ON campaign_enrolments(contact_id);
CREATE TABLE campaign_sends (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL,
    contact_id  INTEGER NOT NULL,
    step        INTEGER NOT NULL,
    channel     TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    message_id  INTEGER,
    slot_at     INTEGER NOT NULL,
    queued_at   INTEGER NOT NULL
);
CREATE INDEX campaign_sends_slot ON campaign_sends(channel, slot_at);
CREATE INDEX campaign_sends_chat ON campaign_sends(channel, recipient, slot_at);
CREATE INDEX campaign_sends_run ON campaign_sends(run_id, step);
"#;

/// Version 17: contact fields, lifecycle stage and lead score.
/// - `contact_fields`: one value per contact and configured field name (`crate::fields`
///   validates it before it is written). `num`: the typed sort key (a number field's number, a
///   date field's day number) so `score:>10`-style comparisons use an index; NULL for text and
///   choices. A field removed from the config keeps its stored values.
/// - `contacts.stage`: the lifecycle stage (NULL: none yet); `contacts.lead_score`: the score
///   rules and agents adjust.
pub const V17: &str = r#"
CREATE TABLE contact_fields (
    contact_id  INTEGER NOT NULL REFERENCES contacts(id),
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    num         REAL,
    updated_at  INTEGER NOT NULL,
    updated_by  TEXT NOT NULL,
    PRIMARY KEY (contact_id, name)
) WITHOUT ROWID;
CREATE INDEX contact_fields_value ON contact_fields(name, value);
CREATE INDEX contact_fields_num ON contact_fields(name, num) WHERE num IS NOT NULL;

ALTER TABLE contacts ADD COLUMN stage TEXT;
ALTER TABLE contacts ADD COLUMN lead_score INTEGER NOT NULL DEFAULT 0;
-- The pipeline: counts per stage, and a stage's contacts by score (keyset on score, id).
CREATE INDEX contacts_pipeline ON contacts(stage, lead_score DESC, id) WHERE merged_into IS NULL;
"#;
