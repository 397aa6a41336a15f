//! The TaskSource conformance suite on LinearSource against the fake Linear.

#[path = "support/helpers.rs"]
mod support;

use std::sync::Arc;

use agentflow_core::{Priority, TaskId, TaskSource, TaskStatus, async_trait};
use agentflow_linear::LinearSource;
use agentflow_testkit::fake_linear::{CommentAuthor, FakeLinear, NewIssue};
use agentflow_testkit::source::{OwnComment, SourceFixture};

struct LinearFixture {
    fake: FakeLinear,
    source: LinearSource,
}

fn state_name(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Todo => "Todo",
        TaskStatus::InProgress => "In Progress",
        TaskStatus::InReview => "In Review",
        TaskStatus::Done => "Done",
        TaskStatus::Failed => "Failed",
        TaskStatus::Other => "Backlog",
    }
}

#[async_trait]
impl SourceFixture for LinearFixture {
    fn source(&self) -> Arc<dyn TaskSource> {
        Arc::new(self.source.clone())
    }

    async fn add_todo(&self, title: &str, body: &str, priority: Priority) -> TaskId {
        let issue = self
            .fake
            .create_issue(NewIssue::new("ENG", title).description(body).priority(priority.0));
        TaskId(issue.id)
    }

    async fn human_moves(&self, id: &TaskId, status: TaskStatus) {
        self.fake.move_issue(id.as_str(), state_name(status));
    }

    async fn human_comments(&self, id: &TaskId, body: &str) -> String {
        let author = CommentAuthor::User(FakeLinear::HUMAN_ID.to_owned());
        self.fake.add_comment(id.as_str(), author, body).id
    }

    async fn own_comments(&self, id: &TaskId) -> Vec<OwnComment> {
        self.fake
            .comments(id.as_str())
            .into_iter()
            .filter(|c| c.user_id.as_deref() == Some(FakeLinear::VIEWER_ID))
            .map(|c| OwnComment { id: c.id, body: c.body })
            .collect()
    }
}

async fn make_fixture() -> Arc<dyn SourceFixture> {
    let (fake, source) = support::setup().await;
    Arc::new(LinearFixture { fake, source })
}

agentflow_testkit::source_conformance!(make_fixture);
