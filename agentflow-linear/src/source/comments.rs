//! Writing comments: the run's single progress comment (created, then edited in place), final
//! summaries, and bodies cut safely below Linear's limits.

use agentflow_core::{Error, Report, ReportKind, Result, TaskId};
use serde_json::json;
use tracing::Instrument;

use super::{LinearSource, lock};
use crate::error::LinearError;
use crate::{filters, model, ops};

/// How many of our comment ids are remembered for own-comment filtering.
const OWN_COMMENTS_KEPT: usize = 10_000;

/// How many runs' progress comments are remembered.
const PROGRESS_KEPT: usize = 10_000;

const CUT_NOTE: &str = "\n\n*(truncated by agentflow)*";

/// Cuts `body` to at most `max` characters (never inside a character), closing an open code
/// fence and saying that it was cut.
pub(crate) fn truncate_markdown(body: &str, max: usize) -> String {
    if body.chars().count() <= max {
        return body.to_owned();
    }
    let budget = max.saturating_sub(CUT_NOTE.chars().count() + 5);
    let end = body.char_indices().nth(budget).map_or(body.len(), |(i, _)| i);
    let mut out = body[..end].to_owned();
    let fences = out.lines().filter(|l| l.trim_start().starts_with("```")).count();
    if fences % 2 == 1 {
        out.push_str("\n```");
    }
    out.push_str(CUT_NOTE);
    out
}

impl LinearSource {
    fn remember_own(&self, id: &str) {
        let mut own = lock(&self.inner.own);
        if own.len() >= OWN_COMMENTS_KEPT {
            own.clear();
        }
        own.insert(id.to_owned());
    }

    pub(crate) fn is_own(&self, id: &str) -> bool {
        lock(&self.inner.own).contains(id)
    }

    /// Creates a comment on `issue` with a fresh id and returns the id.
    pub(crate) async fn create_comment(&self, issue: &str, body: &str) -> Result<String> {
        self.create_comment_as(issue, body, uuid::Uuid::new_v4()).await
    }

    /// Creates a comment on `issue` under the id `id`, exactly once: when the create fails in a
    /// way that may hide a comment Linear made (its answer timed out and the client sent it
    /// again, or a restarted daemon posts the same report), the id is looked up, and a comment
    /// found on `issue` counts as created.
    pub(crate) async fn create_comment_as(
        &self,
        issue: &str,
        body: &str,
        id: uuid::Uuid,
    ) -> Result<String> {
        let id = id.to_string();
        let body = truncate_markdown(body, self.inner.config.max_comment_chars);
        let sent: std::result::Result<model::CommentCreate, _> = self
            .inner
            .client
            .request(
                "AgentflowCommentCreate",
                ops::COMMENT_CREATE,
                json!({ "id": id, "issueId": issue, "body": body }),
            )
            .await;
        let failure: Error = match sent {
            Ok(r) if r.comment_create.success => {
                self.remember_own(&r.comment_create.comment.id);
                return Ok(r.comment_create.comment.id);
            }
            Ok(_) => {
                Error::unavailable("linear", format!("commentCreate on {issue} reported failure"))
            }
            Err(e) if e.is_not_found() => return Err(Error::not_found("task", issue)),
            // Nothing was sent (rate limited), or Linear failed before acting (5xx, a rejected
            // key): no comment can be hiding; the caller may try again.
            Err(
                e @ (LinearError::RateLimited { .. }
                | LinearError::Server { .. }
                | LinearError::Auth { .. }),
            ) => return Err(e.into()),
            // An answer that never came, or an error that may mean the id is taken (an earlier
            // create landed): look the id up.
            Err(e) => e.into(),
        };
        match self.comment_issue(&id).await {
            Ok(Some(on)) if on == issue => {
                tracing::info!(comment = %id, "the comment had been created; its answer was lost");
                self.remember_own(&id);
                Ok(id)
            }
            _ => Err(failure),
        }
    }

    /// The issue id the comment `id` is on; `None` when there is no such comment.
    async fn comment_issue(&self, id: &str) -> Result<Option<String>> {
        let found: std::result::Result<model::CommentLookup, _> =
            self.inner.client.request("AgentflowComment", ops::COMMENT, json!({ "id": id })).await;
        match found {
            Ok(r) => Ok(Some(r.comment.issue.map(|i| i.id).unwrap_or_default())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces the body of our comment `id`; `Ok(false)` when it no longer exists.
    pub(crate) async fn edit_comment(&self, id: &str, body: &str) -> Result<bool> {
        let body = truncate_markdown(body, self.inner.config.max_comment_chars);
        let sent: std::result::Result<model::CommentUpdate, _> = self
            .inner
            .client
            .request(
                "AgentflowCommentUpdate",
                ops::COMMENT_UPDATE,
                json!({ "id": id, "body": body }),
            )
            .await;
        match sent {
            Ok(r) => Ok(r.comment_update.success),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// An issue's comments, oldest first (at most `limit`, one request up to 250).
    pub(crate) async fn issue_comments(
        &self,
        issue: &str,
        limit: usize,
    ) -> Result<Vec<model::Comment>> {
        let r: model::Comments = self
            .inner
            .client
            .request(
                "AgentflowComments",
                ops::COMMENTS,
                json!({ "filter": filters::issue_comments(issue), "first": limit.clamp(1, 250) }),
            )
            .await?;
        let mut nodes = r.comments.nodes;
        nodes.sort_by_key(|c| c.created_at);
        Ok(nodes)
    }

    /// Forgets the progress comment kept under `key` on every issue (the run is over).
    pub(crate) fn forget_progress(&self, key: &str) {
        lock(&self.inner.progress).retain(|(_, k), _| k != key);
    }

    /// Edits the progress comment kept under `key` (a run), or creates it on first use.
    pub(crate) async fn upsert_progress(
        &self,
        issue: &str,
        key: String,
        body: &str,
    ) -> Result<String> {
        let slot = (issue.to_owned(), key);
        let existing = lock(&self.inner.progress).get(&slot).cloned();
        if let Some(comment) = existing {
            if self.edit_comment(&comment, body).await? {
                return Ok(comment);
            }
            tracing::info!(task = issue, comment, "progress comment is gone; creating a new one");
        }
        let comment = self.create_comment(issue, body).await?;
        let mut progress = lock(&self.inner.progress);
        if progress.len() >= PROGRESS_KEPT {
            // Runs that never posted a summary; forgetting them only means a new comment if
            // one of them reports again.
            progress.clear();
        }
        progress.insert(slot, comment.clone());
        Ok(comment)
    }
}

pub(super) async fn report(source: &LinearSource, id: &TaskId, report: &Report) -> Result<()> {
    let span =
        tracing::debug_span!("linear.report", task = %id, run = %report.run, kind = ?report.kind);
    async move {
        match report.kind {
            ReportKind::Progress => {
                source.upsert_progress(id.as_str(), report.run.clone(), &report.body).await?;
            }
            ReportKind::Summary => {
                // One summary per run, however often it is reported (a retry after a lost
                // answer, a restarted daemon finishing the run's recorded end).
                let comment = summary_comment_id(id.as_str(), &report.run);
                source.create_comment_as(id.as_str(), &report.body, comment).await?;
                // The run is over: its progress comment is final.
                lock(&source.inner.progress).remove(&(id.as_str().to_owned(), report.run.clone()));
            }
        }
        Ok(())
    }
    .instrument(span)
    .await
}

/// The comment id of the summary of `run` on `issue`: the same for every attempt to post it, in
/// the UUID v4 format Linear asks for (a name-based UUID v5 with the version bits of a v4).
pub(crate) fn summary_comment_id(issue: &str, run: &str) -> uuid::Uuid {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6a1f_3c2e_9b4d_4e8f_a07c_5d2b_1e9f_8c3a);
    let name = uuid::Uuid::new_v5(&NAMESPACE, format!("summary\n{issue}\n{run}").as_bytes());
    uuid::Builder::from_random_bytes(name.into_bytes()).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_ids_are_stable_v4_uuids_per_issue_and_run() {
        let a = summary_comment_id("issue-1", "run-1");
        assert_eq!(a, summary_comment_id("issue-1", "run-1"));
        assert_eq!(a.get_version_num(), 4);
        assert_ne!(a, summary_comment_id("issue-1", "run-2"));
        assert_ne!(a, summary_comment_id("issue-2", "run-1"));
    }

    #[test]
    fn short_bodies_are_kept() {
        assert_eq!(truncate_markdown("hello", 100), "hello");
    }

    #[test]
    fn long_bodies_are_cut_on_char_boundaries_with_a_note() {
        let body = "é".repeat(500);
        let cut = truncate_markdown(&body, 100);
        assert!(cut.chars().count() <= 100, "{}", cut.chars().count());
        assert!(cut.ends_with(CUT_NOTE));
    }

    #[test]
    fn an_open_code_fence_is_closed() {
        let body = format!("intro\n```rust\n{}", "let x = 1;\n".repeat(100));
        let cut = truncate_markdown(&body, 200);
        let fences = cut.lines().filter(|l| l.starts_with("```")).count();
        assert_eq!(fences % 2, 0, "{cut}");
        assert!(cut.chars().count() <= 200);
    }
}
