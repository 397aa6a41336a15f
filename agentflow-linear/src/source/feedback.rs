//! Feedback: new human comments on In Review and In Progress issues, in one paginated query per
//! poll.

use agentflow_core::{Feedback, FeedbackBatch, Result, TaskId, TaskStatus};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use super::{LinearSource, lock};
use crate::{filters, model, ops};

/// Pages one poll may walk (each up to `page_size` comments).
const MAX_FEEDBACK_PAGES: usize = 20;

/// How far before the cursor each poll reads again. Linear stamps a comment when it is created
/// but a query may see it a little later, after a newer one already moved the cursor; reading
/// an overlap (and skipping what was already returned) keeps such a comment from being missed.
const OVERLAP: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

pub(super) async fn poll(source: &LinearSource, cursor: Option<&str>) -> Result<FeedbackBatch> {
    let map = source.states().await?;
    let since = cursor.and_then(|c| DateTime::parse_from_rfc3339(c).ok()).map(|t| t.to_utc());
    let after = match (cursor, since) {
        (_, Some(t)) => (t - OVERLAP).to_rfc3339_opts(SecondsFormat::Millis, true),
        (Some(c), None) => c.to_owned(),
        (None, None) => {
            format!("-PT{}S", source.inner.config.feedback_lookback.as_secs().max(1))
        }
    };
    let mut states = map.ids(TaskStatus::InReview);
    states.extend(map.ids(TaskStatus::InProgress));
    let filter = filters::feedback(&map.team_keys(), &states, &after);
    let mut comments = Vec::new();
    let mut page_after: Option<String> = None;
    for _ in 0..MAX_FEEDBACK_PAGES {
        let page: model::Comments = source
            .inner
            .client
            .request(
                "AgentflowComments",
                ops::COMMENTS,
                json!({ "filter": filter, "first": source.inner.config.page_size, "after": page_after }),
            )
            .await?;
        let more = page.comments.page_info.has_next_page;
        page_after = page.comments.page_info.end_cursor;
        comments.extend(page.comments.nodes);
        if !more || page_after.is_none() {
            break;
        }
    }
    comments.sort_by_key(|c| c.created_at);
    let newest: Option<DateTime<Utc>> = comments.iter().map(|c| c.created_at).max();
    {
        let mut seen = lock(&source.inner.feedback_seen);
        comments.retain(|c| seen.insert(c.id.clone(), c.created_at).is_none());
        if let Some(newest) = newest {
            seen.retain(|_, at| *at >= newest - OVERLAP * 2);
        }
    }
    let items = comments
        .into_iter()
        .filter(|c| !is_own(source, c, &map.viewer_id))
        .filter_map(|c| {
            let issue = c.issue?;
            let user = c.user?;
            Some(Feedback {
                id: c.id,
                task: TaskId(issue.id),
                author: if user.display_name.is_empty() { user.name } else { user.display_name },
                body: c.body,
                created_at: c.created_at,
            })
        })
        .collect();
    Ok(FeedbackBatch {
        items,
        // The cursor only moves forward; `None` keeps it.
        cursor: newest
            .filter(|n| since.is_none_or(|s| *n > s))
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
    })
}

/// Our own comments never count as feedback: the viewer's, any app actor's, or one we created.
fn is_own(source: &LinearSource, c: &model::Comment, viewer: &str) -> bool {
    c.bot_actor.is_some()
        || c.user.as_ref().is_none_or(|u| u.is_me || u.id == viewer)
        || source.is_own(&c.id)
}
