//! Virtual keys in the ledger's database: one row per key, the record itself stored as its
//! protobuf encoding (new fields need no migration), found by key hash or by id.

/// Statements for one backend (`$N` placeholders work in both SQLite and PostgreSQL).
macro_rules! key_queries {
    ($name:ident, $db:ty) => {
        pub(crate) mod $name {
            use prost::Message;
            use sqlx::Row;

            use crate::error::StoreError;
            use crate::proto::{DeleteKeysRequest, KeyLookup, VirtualKey};

            fn decode(bytes: &[u8]) -> Result<VirtualKey, StoreError> {
                VirtualKey::decode(bytes)
                    .map_err(|e| StoreError::Corrupt(format!("virtual key record: {e}")))
            }

            pub(crate) async fn put(
                pool: &sqlx::Pool<$db>,
                key: &VirtualKey,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO virtual_keys (key_hash, key_id, record, created_ms)
                     VALUES ($1, $2, $3, $4)
                     ON CONFLICT (key_hash) DO UPDATE SET record = excluded.record",
                )
                .bind(&key.key_hash)
                .bind(&key.key_id)
                .bind(key.encode_to_vec())
                .bind(key.created_ms)
                .execute(pool)
                .await?;
                Ok(())
            }

            pub(crate) async fn get(
                pool: &sqlx::Pool<$db>,
                lookup: &KeyLookup,
            ) -> Result<Option<VirtualKey>, StoreError> {
                let row = if lookup.key_hash.is_empty() {
                    sqlx::query("SELECT record FROM virtual_keys WHERE key_id = $1")
                        .bind(&lookup.key_id)
                        .fetch_optional(pool)
                        .await?
                } else {
                    sqlx::query("SELECT record FROM virtual_keys WHERE key_hash = $1")
                        .bind(&lookup.key_hash)
                        .fetch_optional(pool)
                        .await?
                };
                match row {
                    Some(r) => Ok(Some(decode(&r.try_get::<Vec<u8>, _>(0)?)?)),
                    None => Ok(None),
                }
            }

            pub(crate) async fn list(
                pool: &sqlx::Pool<$db>,
            ) -> Result<Vec<VirtualKey>, StoreError> {
                let rows =
                    sqlx::query("SELECT record FROM virtual_keys ORDER BY created_ms, key_id")
                        .fetch_all(pool)
                        .await?;
                rows.iter()
                    .map(|r| decode(&r.try_get::<Vec<u8>, _>(0)?))
                    .collect()
            }

            pub(crate) async fn delete(
                pool: &sqlx::Pool<$db>,
                req: &DeleteKeysRequest,
            ) -> Result<u32, StoreError> {
                let mut deleted = 0u64;
                for h in &req.key_hashes {
                    deleted += sqlx::query("DELETE FROM virtual_keys WHERE key_hash = $1")
                        .bind(h)
                        .execute(pool)
                        .await?
                        .rows_affected();
                }
                for id in &req.key_ids {
                    deleted += sqlx::query("DELETE FROM virtual_keys WHERE key_id = $1")
                        .bind(id)
                        .execute(pool)
                        .await?
                        .rows_affected();
                }
                Ok(u32::try_from(deleted).unwrap_or(u32::MAX))
            }
        }
    };
}

key_queries!(sqlite, sqlx::Sqlite);
key_queries!(postgres, sqlx::Postgres);
