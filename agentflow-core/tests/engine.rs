//! Engine behaviour on the in-memory backends, with scripted executors and injected failures.

mod engine {
    mod cancel;
    mod control;
    mod feedback;
    mod flow;
    mod progress;
    mod recovery;
    mod retry;
    mod spans;
    pub(crate) mod support;
}
