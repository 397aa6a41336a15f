//! Engine behaviour on the in-memory backends, with scripted executors and injected failures.

mod engine {
    mod cancel;
    mod flow;
    pub(crate) mod support;
}
