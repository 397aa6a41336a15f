//! Fault scenario 6 of docs/reliability.md: three daemons share one Postgres (state and queue in
//! one schema) or one Redis (the queue under one key prefix; each daemon keeps its own SQLite
//! state), with the command executor and the fake Linear.
//!
//! - 30 issues: every one is executed exactly once (each run appends its task key to a file)
//!   and ends Done with one summary.
//! - 9 slower issues: one daemon is SIGKILLed while it runs some of them; the other two finish
//!   them all — each completed exactly once (the killed daemon's runs die with it and never
//!   record a completion), one summary and one job each. An issue the killed daemon had
//!   claimed but not yet queued is queued by the survivors' periodic reconciliation.

#[path = "daemon/fault.rs"]
mod fault;
#[path = "daemon/support.rs"]
mod support;

use std::time::Instant;

use agentflow_testkit::fake_linear::FakeLinear;
use fault::{Backend, Storage, on_backends};

on_backends!(three_daemons: redis, postgres);

const FIRST: usize = 30;
const SLOW: usize = 9;

async fn three_daemons(backend: Backend) {
    let Some(storage) = Storage::shared(backend) else { return };
    let root = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(root.path()).unwrap();
    let linear = FakeLinear::start().await;
    let log = fault::record_file(&root, "executions.log");
    let starts = fault::record_file(&root, "starts.log");
    // Every run notes where it started (its workspace is under its daemon's directory); slow
    // issues take 3 s, the others 0.1 s; the completion is recorded at the end.
    let script = format!(
        "echo \"$AGENTFLOW_TASK_KEY $PWD\" >> {starts}; \
         case \"$AGENTFLOW_TASK_TITLE\" in Slow*) sleep 3;; *) sleep 0.1;; esac; {}",
        fault::recording(&log, "0"),
        starts = starts.display()
    );
    let dirs: Vec<_> = (0..3).map(|i| root.join(format!("daemon-{i}"))).collect();
    let daemons: Vec<_> = dirs
        .iter()
        .map(|dir| {
            std::fs::create_dir_all(dir).unwrap();
            fault::command(fault::linear_daemon(dir, &linear, &storage), &script)
                .env("AGENTFLOW_ENGINE_WORKERS", "3")
                // A daemon killed between claiming an issue and queueing its job leaves it In
                // Progress without a job; the survivors' periodic reconciliation queues it.
                .env("AGENTFLOW_ENGINE_RECONCILE_INTERVAL", "1s")
                .start()
        })
        .collect();

    let mut postmortem = fault::Postmortem::new(format!("three-daemons-{backend:?}"));
    for d in &daemons {
        postmortem.watch(&d.lines);
    }
    postmortem.file("starts.log", &starts);
    postmortem.file("executions.log", &log);

    // Phase 1: 30 issues shared by three daemons.
    let started = Instant::now();
    let issues = linear.create_issues("ENG", "Todo", "Tidy the notes", FIRST);
    daemons[0]
        .eventually("the 30 issues to be Done", || async {
            (fault::count_in(&linear, &issues, "Done") == FIRST).then_some(())
        })
        .await;
    let phase1 = started.elapsed();
    let per_daemon: Vec<usize> = dirs
        .iter()
        .map(|d| {
            let d = d.display().to_string();
            std::fs::read_to_string(&starts).unwrap().lines().filter(|l| l.contains(&d)).count()
        })
        .collect();
    let queue = storage.queue(&dirs[0]).await;
    fault::assert_exactly_once(&linear, &issues, Some(&log), Some(&*queue)).await;

    // Phase 2: daemon 0 is killed while it runs slow issues.
    let slow = linear.create_issues("ENG", "Todo", "Slow tidy", SLOW);
    let victim = dirs[0].display().to_string();
    let victim_runs = daemons[0]
        .eventually("daemon 0 to run slow issues", || async {
            let runs = std::fs::read_to_string(&starts).unwrap();
            let on_victim: Vec<String> = runs
                .lines()
                .filter(|l| {
                    l.contains(&victim)
                        && slow.iter().any(|s| l.starts_with(&format!("{} ", s.identifier)))
                })
                .map(str::to_owned)
                .collect();
            (!on_victim.is_empty()).then_some(on_victim)
        })
        .await;
    daemons[0].kill9();
    let killed = Instant::now();
    daemons[1]
        .eventually("the slow issues to be Done on the other daemons", || async {
            (fault::count_in(&linear, &slow, "Done") == SLOW).then_some(())
        })
        .await;
    let phase2 = killed.elapsed();
    fault::assert_exactly_once(&linear, &slow, Some(&log), Some(&*queue)).await;
    for d in daemons.into_iter().skip(1) {
        assert!(d.terminate().success());
    }
    eprintln!(
        "three_daemons {backend:?}: {FIRST} issues Done in {phase1:?}, runs per daemon \
         {per_daemon:?}; daemon 0 killed while running {} slow issues, all {SLOW} Done \
         {phase2:?} after the kill",
        victim_runs.len()
    );
}
