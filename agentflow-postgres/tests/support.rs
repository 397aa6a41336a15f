//! Shared by the integration tests: a fresh schema per test on the local Postgres.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use agentflow_postgres::PgConfig;

/// The test database (override with `AGENTFLOW_TEST_POSTGRES_URL`).
pub fn url() -> String {
    std::env::var("AGENTFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema name no other test uses: `aft_<unix secs>_<random>`.
pub fn fresh_schema() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("aft_{secs}_{:08x}", fastrand_u32())
}

fn fastrand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    uuid::Uuid::new_v4().as_u128() as u32 ^ nanos
}

/// Config for a fresh schema. Fails (never skips) when Postgres does not answer: the tests
/// that call it need a real server, in CI and out.
pub async fn config() -> PgConfig {
    let cfg = PgConfig::new(url()).schema(fresh_schema()).max_connections(8);
    let pool = cfg.pool().await.expect("pool");
    let up =
        tokio::time::timeout(Duration::from_secs(10), sqlx::query("SELECT 1").execute(&pool)).await;
    match up {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => panic!(
            "Postgres at {} is unreachable ({e}); these tests need it (CI={:?})",
            url(),
            std::env::var("CI").ok()
        ),
        Err(_) => panic!("Postgres at {} did not answer within 10 s", url()),
    }
    drop_stale_schemas(&pool).await;
    pool.close().await;
    cfg
}

/// Drops test schemas older than an hour (left by earlier runs).
async fn drop_stale_schemas(pool: &sqlx::PgPool) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'aft\\_%'")
            .fetch_all(pool)
            .await
            .unwrap_or_default();
    for name in names {
        let secs = name.split('_').nth(1).and_then(|s| s.parse::<u64>().ok()).unwrap_or(now);
        if now.saturating_sub(secs) > 3600 {
            let _ =
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
                    .execute(pool)
                    .await;
        }
    }
}
