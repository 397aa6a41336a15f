//! [`TaskSource`] conformance cases. Run them all with
//! [`source_conformance!`](crate::source_conformance).
//!
//! A source is tested through a [`SourceFixture`]: the source under test plus the means to act
//! on the tracker as a person would (add a task, move it, comment) and to look at what the
//! source wrote. [`LocalFixture`] is the fixture for [`LocalSource`]; the Linear adapter's
//! fixture drives a fake Linear server.

mod cases;

use std::sync::Arc;

use agentflow_core::memory::LocalSource;
use agentflow_core::{Priority, TaskId, TaskSource, TaskStatus};
use async_trait::async_trait;

pub use cases::{
    claim_fails_after_human_moved_task, claim_moves_todo_to_in_progress_once,
    feedback_cursor_advances, feedback_only_human_comments_on_open_tasks, get_list_and_statuses,
    progress_report_edits_one_comment, ready_lists_todo_only, set_status_changes_status,
};

/// A comment the source wrote (a report), as the tracker shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnComment {
    /// The tracker's comment id.
    pub id: String,
    /// The body as the tracker shows it (a source may decorate the report's text).
    pub body: String,
}

/// A source under test plus a person's hands on the tracker behind it.
///
/// Methods act directly on the tracker (or its fake), not through the [`TaskSource`]; they panic
/// when the tracker refuses, since that is a broken fixture, not a broken source.
#[async_trait]
pub trait SourceFixture: Send + Sync + 'static {
    /// The source under test.
    fn source(&self) -> Arc<dyn TaskSource>;

    /// Creates a task in Todo, as a person would, and returns its id.
    async fn add_todo(&self, title: &str, body: &str, priority: Priority) -> TaskId;

    /// Moves a task to `status`, as a person would.
    async fn human_moves(&self, id: &TaskId, status: TaskStatus);

    /// Adds a person's comment to a task and returns the comment's id.
    async fn human_comments(&self, id: &TaskId, body: &str) -> String;

    /// The comments the source itself wrote on a task, oldest first.
    async fn own_comments(&self, id: &TaskId) -> Vec<OwnComment>;
}

/// The [`SourceFixture`] for [`LocalSource`].
///
/// ```
/// use std::sync::Arc;
/// use agentflow_testkit::source::{LocalFixture, SourceFixture};
/// let fixture: Arc<dyn SourceFixture> = Arc::new(LocalFixture::new());
/// ```
#[derive(Debug, Clone, Default)]
pub struct LocalFixture {
    source: LocalSource,
}

impl LocalFixture {
    /// A fixture over a fresh, empty [`LocalSource`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The local source itself.
    pub fn local(&self) -> &LocalSource {
        &self.source
    }
}

#[async_trait]
impl SourceFixture for LocalFixture {
    fn source(&self) -> Arc<dyn TaskSource> {
        Arc::new(self.source.clone())
    }

    async fn add_todo(&self, title: &str, body: &str, priority: Priority) -> TaskId {
        let task = self.source.add(title, body);
        self.source.edit(&task.id, |t| t.priority = priority).expect("setting the priority");
        task.id
    }

    async fn human_moves(&self, id: &TaskId, status: TaskStatus) {
        self.source.move_to(id, status).unwrap_or_else(|e| panic!("moving {id} to {status}: {e}"));
    }

    async fn human_comments(&self, id: &TaskId, body: &str) -> String {
        self.source
            .comment(id, "A Person", body)
            .unwrap_or_else(|e| panic!("commenting on {id}: {e}"))
    }

    async fn own_comments(&self, id: &TaskId) -> Vec<OwnComment> {
        self.source
            .comments(id)
            .into_iter()
            .filter(|c| c.report.is_some())
            .map(|c| OwnComment { id: c.id, body: c.body })
            .collect()
    }
}
