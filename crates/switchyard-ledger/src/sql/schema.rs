//! The ledger's tables, as numbered migrations written in SQL that both SQLite and PostgreSQL
//! accept. Each backend applies the versions it has not recorded yet when it opens.

/// Schema versions, applied in order; each entry's statements run in one transaction.
/// Append new versions, never edit old ones.
pub(crate) const MIGRATIONS: &[(i64, &[&str])] = &[
    (
        1,
        &[
            "CREATE TABLE IF NOT EXISTS usage_records (
            request_id TEXT PRIMARY KEY,
            time_ms BIGINT NOT NULL,
            api_key_id TEXT NOT NULL,
            requested_group TEXT NOT NULL,
            served_group TEXT NOT NULL,
            deployment TEXT NOT NULL,
            backend_model TEXT NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            tokens_estimated BOOLEAN NOT NULL,
            latency_ms BIGINT NOT NULL,
            ttft_ms BIGINT,
            streamed BOOLEAN NOT NULL,
            status TEXT NOT NULL,
            http_status BIGINT NOT NULL,
            attempts TEXT NOT NULL,
            recorded_ms BIGINT NOT NULL
        )",
            "CREATE INDEX IF NOT EXISTS usage_records_time ON usage_records (time_ms)",
            "CREATE INDEX IF NOT EXISTS usage_records_key_time ON usage_records (api_key_id, time_ms)",
            "CREATE INDEX IF NOT EXISTS usage_records_group_time
            ON usage_records (requested_group, time_ms)",
        ],
    ),
    (
        2,
        &["CREATE TABLE IF NOT EXISTS virtual_keys (
            key_hash TEXT PRIMARY KEY,
            key_id TEXT NOT NULL UNIQUE,
            record BYTEA NOT NULL,
            created_ms BIGINT NOT NULL
        )"],
    ),
    (
        3,
        // The client API a request came through. Rows from before it were all OpenAI chat or
        // embeddings requests; the default names the common case.
        &["ALTER TABLE usage_records ADD COLUMN api TEXT NOT NULL DEFAULT 'openai.chat'"],
    ),
];

/// Bookkeeping table of applied schema versions.
pub(crate) const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS ledger_schema_versions (
    version BIGINT PRIMARY KEY,
    applied_ms BIGINT NOT NULL
)";
pub(crate) const MIGRATION_APPLIED: &str =
    "SELECT COUNT(*) FROM ledger_schema_versions WHERE version = $1";
pub(crate) const MIGRATION_MARK: &str =
    "INSERT INTO ledger_schema_versions (version, applied_ms) VALUES ($1, $2)
     ON CONFLICT (version) DO NOTHING";
