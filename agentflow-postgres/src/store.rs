//! [`PgStore`]: the [`StateStore`] on Postgres.

mod row;
mod sql;

use std::sync::Arc;

use agentflow_core::{
    Error, LogLine, LogPage, Page, Result, Run, RunFilter, RunFinish, RunId, RunPage, RunTotals,
    Session, Setting, StateStore, TaskId, Usage,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row};

use crate::config::PgConfig;
use crate::error::db;
use crate::migrate::migrate_pool;
use crate::text::{json_text, opt_text, text};
use row::{level_str, log_line, run, session, setting, to_i64};
use sql::StoreSql;

/// Sessions, processed comments, runs and their logs, settings and cursors in Postgres.
///
/// Safe to share between processes: `mark_processed` is one `INSERT … ON CONFLICT DO NOTHING`,
/// and log appends to one run are ordered by a row lock on the run's log head. Each run keeps
/// at most [`PgConfig::max_log_lines`] lines; past that the oldest are deleted and the log
/// starts with one `marker` line saying how many were dropped.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    sql: Arc<StoreSql>,
    max_log_lines: u64,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("max_log_lines", &self.max_log_lines)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Connects with `config`, running the migrations unless `config.run_migrations` is off.
    pub async fn connect(config: &PgConfig) -> Result<Self> {
        let pool = config.pool().await?;
        Self::with_pool(pool, config).await
    }

    /// Uses an existing pool (e.g. shared with a [`PgQueue`](crate::PgQueue)).
    pub async fn with_pool(pool: PgPool, config: &PgConfig) -> Result<Self> {
        config.validate()?;
        if config.run_migrations {
            migrate_pool(&pool, &config.schema).await?;
        }
        Ok(PgStore {
            pool,
            sql: Arc::new(StoreSql::new(&config.schema)),
            max_log_lines: config.max_log_lines,
        })
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn usage_binds(u: &Usage) -> (i64, i64, f64, i64) {
    (to_i64(u.input_tokens), to_i64(u.output_tokens), u.cost_usd, i64::from(u.turns))
}

#[async_trait]
impl StateStore for PgStore {
    async fn get_session(&self, task: &TaskId) -> Result<Option<Session>> {
        sqlx::query(AssertSqlSafe(self.sql.get_session.clone()))
            .bind(task.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db("get session"))?
            .map(|r| session(&r))
            .transpose()
    }

    async fn put_session(&self, s: &Session) -> Result<()> {
        let (i, o, c, t) = usage_binds(&s.usage);
        sqlx::query(AssertSqlSafe(self.sql.put_session.clone()))
            .bind(s.task.as_str())
            .bind(&s.session_id)
            .bind(s.workspace.as_ref().map(|p| p.to_string_lossy().into_owned()))
            .bind(i)
            .bind(o)
            .bind(c)
            .bind(t)
            .bind(s.updated_at)
            .execute(&self.pool)
            .await
            .map_err(db("put session"))?;
        Ok(())
    }

    async fn mark_processed(&self, comment_id: &str) -> Result<bool> {
        let n = sqlx::query(AssertSqlSafe(self.sql.mark_processed.clone()))
            .bind(comment_id)
            .execute(&self.pool)
            .await
            .map_err(db("mark comment processed"))?
            .rows_affected();
        Ok(n == 1)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(task = %r.task, job = %r.job, attempt = r.attempt, worker = %r.worker))]
    async fn start_run(&self, r: &Run) -> Result<()> {
        let (i, o, c, t) = usage_binds(&r.usage);
        let n = sqlx::query(AssertSqlSafe(self.sql.start_run.clone()))
            .bind(r.id.0)
            .bind(r.task.as_str())
            .bind(text(&r.task_key))
            .bind(text(&r.title))
            .bind(r.job.0)
            .bind(r.kind.as_str())
            .bind(i64::from(r.attempt))
            .bind(&r.worker)
            .bind(r.started_at)
            .bind(r.finished_at)
            .bind(r.status.as_str())
            .bind(opt_text(&r.error))
            .bind(opt_text(&r.summary))
            .bind(&r.session_id)
            .bind(i)
            .bind(o)
            .bind(c)
            .bind(t)
            .execute(&self.pool)
            .await
            .map_err(db("start run"))?
            .rows_affected();
        if n == 0 {
            return Err(Error::Conflict(format!("run {} already exists", r.id)));
        }
        Ok(())
    }

    async fn finish_run(&self, id: RunId, f: &RunFinish) -> Result<()> {
        let (i, o, c, t) = usage_binds(&f.usage);
        let n = sqlx::query(AssertSqlSafe(self.sql.finish_run.clone()))
            .bind(id.0)
            .bind(f.status.as_str())
            .bind(f.finished_at)
            .bind(opt_text(&f.error))
            .bind(opt_text(&f.summary))
            .bind(&f.session_id)
            .bind(i)
            .bind(o)
            .bind(c)
            .bind(t)
            .execute(&self.pool)
            .await
            .map_err(db("finish run"))?
            .rows_affected();
        if n == 0 {
            return Err(Error::not_found("run", id));
        }
        Ok(())
    }

    async fn get_run(&self, id: RunId) -> Result<Option<Run>> {
        sqlx::query(AssertSqlSafe(self.sql.get_run.clone()))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("get run"))?
            .map(|r| run(&r))
            .transpose()
    }

    async fn list_runs(&self, filter: &RunFilter, page: Page) -> Result<RunPage> {
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let task = filter.task.as_ref().map(|t| t.as_str());
        let text = filter.text.as_deref();
        let total: i64 = sqlx::query_scalar(AssertSqlSafe(self.sql.count_runs.clone()))
            .bind(task)
            .bind(&statuses)
            .bind(filter.since)
            .bind(filter.until)
            .bind(text)
            .fetch_one(&self.pool)
            .await
            .map_err(db("count runs"))?;
        let runs = sqlx::query(AssertSqlSafe(self.sql.list_runs.clone()))
            .bind(task)
            .bind(&statuses)
            .bind(filter.since)
            .bind(filter.until)
            .bind(text)
            .bind(to_i64(page.offset))
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db("list runs"))?
            .iter()
            .map(run)
            .collect::<Result<Vec<_>>>()?;
        Ok(RunPage { runs, total: u64::try_from(total).unwrap_or(0) })
    }

    async fn totals_since(&self, since: DateTime<Utc>) -> Result<RunTotals> {
        let r = sqlx::query(AssertSqlSafe(self.sql.totals_since.clone()))
            .bind(since)
            .fetch_one(&self.pool)
            .await
            .map_err(db("run totals"))?;
        let get = |i: usize| -> Result<i64> { r.try_get(i).map_err(db("run totals")) };
        Ok(RunTotals {
            usage: Usage {
                input_tokens: u64::try_from(get(0)?).unwrap_or(0),
                output_tokens: u64::try_from(get(1)?).unwrap_or(0),
                cost_usd: r.try_get(2).map_err(db("run totals"))?,
                turns: u32::try_from(get(3)?).unwrap_or(u32::MAX),
            },
            succeeded: u64::try_from(get(4)?).unwrap_or(0),
            failed: u64::try_from(get(5)?).unwrap_or(0),
        })
    }

    async fn append_logs(&self, run_id: RunId, mut lines: Vec<LogLine>) -> Result<Vec<LogLine>> {
        if lines.is_empty() {
            return Ok(lines);
        }
        let n = to_i64(lines.len() as u64);
        let mut tx = self.pool.begin().await.map_err(db("append logs"))?;
        let head = sqlx::query(AssertSqlSafe(self.sql.log_head.clone()))
            .bind(run_id.0)
            .bind(n)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("append logs"))?;
        let last: i64 = head.try_get(0).map_err(db("append logs"))?;
        let dropped: i64 = head.try_get(1).map_err(db("append logs"))?;
        let first = last - n + 1;
        for (i, line) in lines.iter_mut().enumerate() {
            line.seq = u64::try_from(first).unwrap_or(0) + i as u64;
        }
        sqlx::query(AssertSqlSafe(self.sql.insert_logs.clone()))
            .bind(run_id.0)
            .bind(lines.iter().map(|l| to_i64(l.seq)).collect::<Vec<_>>())
            .bind(lines.iter().map(|l| l.at).collect::<Vec<_>>())
            .bind(lines.iter().map(|l| level_str(l.level)).collect::<Vec<_>>())
            .bind(lines.iter().map(|l| l.kind.as_str()).collect::<Vec<_>>())
            .bind(lines.iter().map(|l| text(&l.line)).collect::<Vec<_>>())
            .bind(lines.iter().map(|l| l.detail.as_ref().map(json_text)).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(db("append logs"))?;
        // Lines dropped+1 ..= last are stored. Past the bound keep max-1 of them: one slot is
        // the marker's.
        let kept = last - dropped;
        let max = to_i64(self.max_log_lines);
        if kept > max || (dropped > 0 && kept > max - 1) {
            let new_dropped = dropped + (kept - (max - 1));
            sqlx::query(AssertSqlSafe(self.sql.trim_logs.clone()))
                .bind(run_id.0)
                .bind(new_dropped)
                .execute(&mut *tx)
                .await
                .map_err(db("trim logs"))?;
            sqlx::query(AssertSqlSafe(self.sql.mark_dropped.clone()))
                .bind(run_id.0)
                .bind(new_dropped)
                .execute(&mut *tx)
                .await
                .map_err(db("trim logs"))?;
        }
        tx.commit().await.map_err(db("append logs"))?;
        Ok(lines)
    }

    async fn logs(&self, run_id: RunId, page: LogPage) -> Result<Vec<LogLine>> {
        sqlx::query(AssertSqlSafe(self.sql.logs.clone()))
            .bind(run_id.0)
            .bind(to_i64(page.after))
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db("read logs"))?
            .iter()
            .map(log_line)
            .collect()
    }

    async fn get_setting(&self, key: &str) -> Result<Option<Setting>> {
        sqlx::query(AssertSqlSafe(self.sql.get_setting.clone()))
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("get setting"))?
            .map(|r| setting(&r))
            .transpose()
    }

    async fn put_setting(&self, key: &str, value: &str, secret: bool) -> Result<()> {
        sqlx::query(AssertSqlSafe(self.sql.put_setting.clone()))
            .bind(key)
            .bind(value)
            .bind(secret)
            .execute(&self.pool)
            .await
            .map_err(db("put setting"))?;
        Ok(())
    }

    async fn delete_setting(&self, key: &str) -> Result<bool> {
        let n = sqlx::query(AssertSqlSafe(self.sql.delete_setting.clone()))
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(db("delete setting"))?
            .rows_affected();
        Ok(n > 0)
    }

    async fn list_settings(&self) -> Result<Vec<Setting>> {
        sqlx::query(AssertSqlSafe(self.sql.list_settings.clone()))
            .fetch_all(&self.pool)
            .await
            .map_err(db("list settings"))?
            .iter()
            .map(|r| setting(r).map(Setting::masked))
            .collect()
    }

    async fn get_cursor(&self, name: &str) -> Result<Option<String>> {
        sqlx::query_scalar(AssertSqlSafe(self.sql.get_cursor.clone()))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("get cursor"))
    }

    async fn put_cursor(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(AssertSqlSafe(self.sql.put_cursor.clone()))
            .bind(name)
            .bind(text(value))
            .execute(&self.pool)
            .await
            .map_err(db("put cursor"))?;
        Ok(())
    }
}
