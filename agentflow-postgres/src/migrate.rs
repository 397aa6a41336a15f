//! Embedded, versioned migrations, applied under an advisory lock so that several instances
//! starting at once apply each exactly once.

use agentflow_core::Result;
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Connection};

use crate::config::{PgConfig, validate_schema};
use crate::error::PgError;

/// One migration: version, name, SQL with `{schema}` placeholders.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "0001_queue", sql: include_str!("../migrations/0001_queue.sql") },
    Migration { version: 2, name: "0002_store", sql: include_str!("../migrations/0002_store.sql") },
];

/// The newest migration version this build knows.
pub const LATEST_MIGRATION: i32 = 2;

/// Applies the embedded migrations to `config.schema` (creating the schema if needed) and
/// returns how many were applied now.
///
/// Use it to migrate from a deploy step with a role that may change the schema, then run the
/// daemons with [`PgConfig::run_migrations`] set to `false`:
///
/// ```no_run
/// # async fn f() -> agentflow_core::Result<()> {
/// let config = agentflow_postgres::PgConfig::new("postgres://admin@db.internal/agentflow");
/// let applied = agentflow_postgres::migrate(&config).await?;
/// println!("{applied} migrations applied");
/// # Ok(()) }
/// ```
pub async fn migrate(config: &PgConfig) -> Result<usize> {
    let pool = config.pool().await?;
    let n = migrate_pool(&pool, &config.schema).await;
    pool.close().await;
    n
}

/// Applies the embedded migrations to `schema` through an existing pool.
pub async fn migrate_pool(pool: &PgPool, schema: &str) -> Result<usize> {
    validate_schema(schema)?;
    let ctx = |step: &str| format!("migrating schema {schema}: {step}");
    let mut conn = pool.acquire().await.map_err(|e| PgError::sqlx(ctx("connect"), e))?;
    let mut tx = conn.begin().await.map_err(|e| PgError::sqlx(ctx("begin"), e))?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('agentflow.migrate.' || $1))")
        .bind(schema)
        .execute(&mut *tx)
        .await
        .map_err(|e| PgError::sqlx(ctx("advisory lock"), e))?;
    let setup = format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}._migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    );
    sqlx::raw_sql(AssertSqlSafe(setup))
        .execute(&mut *tx)
        .await
        .map_err(|e| PgError::sqlx(ctx("migrations table"), e))?;
    let applied: Vec<i32> =
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT version FROM {schema}._migrations")))
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| PgError::sqlx(ctx("read versions"), e))?;
    let mut count = 0;
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        let sql = m.sql.replace("{schema}", schema);
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(|e| PgError::sqlx(ctx(&format!("migration {}", m.name)), e))?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}._migrations (version, name) VALUES ($1, $2)"
        )))
        .bind(m.version)
        .bind(m.name)
        .execute(&mut *tx)
        .await
        .map_err(|e| PgError::sqlx(ctx(&format!("record {}", m.name)), e))?;
        tracing::info!(schema, migration = m.name, "applied postgres migration");
        count += 1;
    }
    tx.commit().await.map_err(|e| PgError::sqlx(ctx("commit"), e))?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dense_and_latest_is_last() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(m.sql.contains("{schema}."), "{}", m.name);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.version), Some(LATEST_MIGRATION));
    }
}
