//! Tracing: every job runs in a span carrying task, job, attempt and worker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agentflow_core::TaskStatus;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use super::support::*;

type Seen = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

struct Spans(Seen);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push((attrs.metadata().name().to_owned(), fields));
    }
}

#[tokio::test(start_paused = true)]
async fn jobs_run_in_spans_with_task_job_attempt_and_worker() {
    let seen: Seen = Arc::default();
    let subscriber = tracing_subscriber::registry().with(Spans(seen.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    let fx = Fixture::new();
    let task = fx.source.add("Summarise", "");
    let engine = fx.engine(Scripted::ok("ok"), paused_config());
    let worker = engine.worker_id().to_string();
    let (shutdown, join, handle) = spawn(engine);
    fx.wait_status(&task.id, TaskStatus::Done).await;
    stop(shutdown, join).await;

    let job = handle.task(&task.id).unwrap().job.unwrap().to_string();
    let spans = seen.lock().unwrap().clone();
    let (_, fields) = spans.iter().find(|(name, _)| name == "job").expect("a job span");
    assert_eq!(fields["task"], task.id.to_string());
    assert_eq!(fields["job"], job);
    assert_eq!(fields["attempt"], "1");
    assert_eq!(fields["worker"], worker);
    assert_eq!(fields["kind"], "\"execute\"");
}
