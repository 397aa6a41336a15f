//! The conformance macros: one named test per case.

use std::future::Future;
use std::time::Duration;

/// How long one conformance case may take before it fails.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(150);

/// Runs one conformance case on a fresh multi-threaded runtime (4 workers), as
/// `#[tokio::test(flavor = "multi_thread", worker_threads = 4)]` would, bounded by
/// [`CASE_TIMEOUT`]. Used by the macros; not meant to be called directly.
#[doc(hidden)]
pub fn run_case<F: Future<Output = ()>>(name: &str, case: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("building the tokio runtime for a conformance case");
    runtime.block_on(async {
        if tokio::time::timeout(CASE_TIMEOUT, case).await.is_err() {
            panic!("conformance case `{name}` did not finish within {CASE_TIMEOUT:?}");
        }
    });
}

/// Expands to `mod $module { #[test] fn case() { … } … }` calling `$crate::$suite::case`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_suite {
    ($module:ident, $suite:ident, $setup:expr, $skip:expr, [$($case:ident),* $(,)?]) => {
        #[allow(unused_imports, clippy::redundant_closure_call)]
        mod $module {
            use super::*;
            $(
                #[test]
                fn $case() {
                    $crate::__private::run_case(
                        concat!(stringify!($module), "::", stringify!($case)),
                        async {
                            let skip: ::std::option::Option<::std::string::String> =
                                ($skip)().await;
                            if let ::std::option::Option::Some(reason) = skip {
                                ::std::eprintln!(
                                    "note: {} skipped: {}",
                                    concat!(stringify!($module), "::", stringify!($case)),
                                    reason,
                                );
                                return;
                            }
                            let subject = ($setup)().await;
                            $crate::$suite::$case(subject).await;
                        },
                    );
                }
            )*
        }
    };
}

/// The `skip_if` of a suite run without one: never skips.
#[doc(hidden)]
pub async fn never_skip() -> Option<String> {
    None
}

/// Runs the [`JobQueue`](agentflow_core::JobQueue) conformance suite ([`crate::queue`]): one test
/// per case, named `queue_conformance::<case>`.
///
/// The argument is an async function (or closure) returning a fresh, isolated
/// `Arc<dyn JobQueue>`; it is called once per case.
///
/// Every suite macro has a second form, `queue_conformance!(make_queue, skip_if = no_server)`,
/// where `no_server` is an async function returning `Option<String>`: when it returns
/// `Some(reason)` a case prints `note: … skipped: reason` and returns without running. It is for
/// servers that may be absent on a developer's machine; under `CI` the function should panic
/// instead, since CI must fail when a service is unreachable.
///
/// ```
/// # use std::sync::Arc;
/// # use agentflow_core::{memory::MemoryQueue, JobQueue};
/// # async fn make_queue() -> Arc<dyn JobQueue> { Arc::new(MemoryQueue::new()) }
/// async fn no_server() -> Option<String> {
///     let up = std::net::TcpStream::connect("127.0.0.1:6379").is_ok();
///     match (up, std::env::var_os("CI").is_some()) {
///         (true, _) => None,
///         (false, true) => panic!("Redis on 127.0.0.1:6379 is unreachable under CI"),
///         (false, false) => Some("Redis on 127.0.0.1:6379 is unreachable".into()),
///     }
/// }
///
/// agentflow_testkit::queue_conformance!(make_queue, skip_if = no_server);
/// # fn main() {}
/// ```
///
/// ```
/// use std::sync::Arc;
/// use agentflow_core::{memory::MemoryQueue, JobQueue};
///
/// async fn make_queue() -> Arc<dyn JobQueue> {
///     Arc::new(MemoryQueue::new())
/// }
///
/// agentflow_testkit::queue_conformance!(make_queue);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! queue_conformance {
    ($setup:expr $(,)?) => {
        $crate::queue_conformance!($setup, skip_if = $crate::__private::never_skip);
    };
    ($setup:expr, skip_if = $skip:expr $(,)?) => {
        $crate::__conformance_suite!(
            queue_conformance,
            queue,
            $setup,
            $skip,
            [
                enqueue_reserve_complete,
                reserve_returns_at_most_max,
                dedup_returns_existing_while_live,
                dedup_key_free_after_completion,
                dedup_key_free_after_failure_and_cancel,
                delayed_job_not_reserved_early,
                reserve_in_priority_order,
                fail_with_retry_at_becomes_retryable,
                attempts_exhausted_fails_for_good,
                fail_without_retry_at_fails_for_good,
                stale_token_gets_lease_lost,
                expired_lease_recovered_and_reserved_by_another_worker,
                expired_lease_on_last_attempt_fails,
                heartbeat_extends_lease,
                release_keeps_attempt,
                cancel_available_job,
                cancel_running_job_loses_lease,
                complete_many_completes_each,
                list_filter_and_paging,
                stats_add_up,
                concurrent_reservers_never_share_a_job,
                wakeups_signal_new_jobs,
            ]
        );
    };
}

/// Runs the [`StateStore`](agentflow_core::StateStore) conformance suite ([`crate::store`]): one
/// test per case, named `store_conformance::<case>`.
///
/// The argument is an async function returning a fresh, isolated `Arc<dyn StateStore>` that keeps
/// the default 10 000 log lines per run.
///
/// ```
/// use std::sync::Arc;
/// use agentflow_core::{memory::MemoryStore, StateStore};
///
/// async fn make_store() -> Arc<dyn StateStore> {
///     Arc::new(MemoryStore::new())
/// }
///
/// agentflow_testkit::store_conformance!(make_store);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! store_conformance {
    ($setup:expr $(,)?) => {
        $crate::store_conformance!($setup, skip_if = $crate::__private::never_skip);
    };
    ($setup:expr, skip_if = $skip:expr $(,)?) => {
        $crate::__conformance_suite!(
            store_conformance,
            store,
            $setup,
            $skip,
            [
                sessions_put_get_replace,
                mark_processed_once,
                mark_processed_concurrently_once,
                runs_start_finish_get,
                runs_list_newest_first_with_filters_and_paging,
                runs_text_search,
                totals_since,
                logs_seq_from_one_and_paging,
                logs_bounded_with_marker,
                settings_masked_in_list,
                settings_delete,
                cursors_get_put,
            ]
        );
    };
}

/// Runs the [`TaskSource`](agentflow_core::TaskSource) conformance suite ([`crate::source`]): one
/// test per case, named `source_conformance::<case>`.
///
/// The argument is an async function returning a fresh `Arc<dyn SourceFixture>`
/// ([`crate::source::SourceFixture`]): the source plus the means to act as a person on it.
///
/// ```
/// use std::sync::Arc;
/// use agentflow_testkit::source::{LocalFixture, SourceFixture};
///
/// async fn make_fixture() -> Arc<dyn SourceFixture> {
///     Arc::new(LocalFixture::new())
/// }
///
/// agentflow_testkit::source_conformance!(make_fixture);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! source_conformance {
    ($setup:expr $(,)?) => {
        $crate::source_conformance!($setup, skip_if = $crate::__private::never_skip);
    };
    ($setup:expr, skip_if = $skip:expr $(,)?) => {
        $crate::__conformance_suite!(
            source_conformance,
            source,
            $setup,
            $skip,
            [
                ready_lists_todo_only,
                claim_moves_todo_to_in_progress_once,
                claim_fails_after_human_moved_task,
                set_status_changes_status,
                feedback_only_human_comments_on_open_tasks,
                feedback_cursor_advances,
                progress_report_edits_one_comment,
                get_list_and_statuses,
            ]
        );
    };
}

/// Runs the [`EventSink`](agentflow_core::EventSink) conformance suite ([`crate::sink`]): one
/// test per case, named `sink_conformance::<case>`.
///
/// The argument is an async function returning a fresh `Arc<dyn EventSink>` with nobody reading
/// from it.
///
/// ```
/// use std::sync::Arc;
/// use agentflow_core::{memory::BroadcastSink, EventSink};
///
/// async fn make_sink() -> Arc<dyn EventSink> {
///     Arc::new(BroadcastSink::default())
/// }
///
/// agentflow_testkit::sink_conformance!(make_sink);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! sink_conformance {
    ($setup:expr $(,)?) => {
        $crate::sink_conformance!($setup, skip_if = $crate::__private::never_skip);
    };
    ($setup:expr, skip_if = $skip:expr $(,)?) => {
        $crate::__conformance_suite!(
            sink_conformance,
            sink,
            $setup,
            $skip,
            [
                emit_never_blocks_without_reader,
                emit_from_many_threads,
                events_serialize_with_wire_names,
            ]
        );
    };
}
