//! The collective watchdog under `mpirun`: a stalled rank ends the job, named, within the
//! deadline, and leaves no process behind; the ranks waiting for it sleep rather than spin;
//! without a fault the watchdog changes nothing. (A downed link between two "nodes":
//! multinode.rs.)

mod common;

use common::*;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The fast run of `steps` steps, and `extra`.
fn train_args(out: &Path, steps: usize, extra: &[&str]) -> Vec<String> {
    common::train_args(fast_run_sets(out, steps), extra)
}

/// Kills what a failed test leaves running (the job and every rank).
struct Job {
    child: Child,
    ranks: Vec<u32>,
}

impl Drop for Job {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for &pid in &self.ranks {
            kill_9(pid);
        }
    }
}

/// User + system CPU seconds of process `pid` so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after the command name.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0 // USER_HZ
}

/// SIGSTOP of the last rank of `ranks` with a 10 s deadline: the job must end non-zero
/// within 40 s, every live rank's message names the stopped rank, and no rank is left.
fn stopped_rank_ends_the_job(ranks: usize) {
    let dir = tempfile::tempdir().unwrap();
    let args = train_args(
        dir.path(),
        100_000,
        &["distributed.collective_timeout_s=10"],
    );
    let child = mpirun_command(ranks, &strs(&args))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mpirun");
    let mut job = Job {
        child,
        ranks: vec![],
    };
    wait_for_steps(&mut job.child, dir.path(), 2);
    job.ranks = (0..ranks)
        .flat_map(|r| rank_pids(job.child.id(), r))
        .collect();
    assert_eq!(job.ranks.len(), ranks, "rank pids {:?}", job.ranks);
    let victim = ranks - 1;
    let stopped_at = Instant::now();
    signal(job.ranks[victim], "STOP");
    // While they wait for the stopped rank, the others sleep: a busy poll would use ~1 s
    // of CPU per second each (the 2-core CI machine shares 2 cores among W ranks).
    let cpu_before = cpu_seconds(job.ranks[0]);
    std::thread::sleep(Duration::from_secs(7));
    let waiting_cpu = cpu_seconds(job.ranks[0]) - cpu_before;
    let status = wait_at_most(
        &mut job.child,
        stopped_at,
        Duration::from_secs(60),
        "the fault",
    );
    let waited = stopped_at.elapsed();
    let err = read_stderr(&mut job.child);
    eprintln!("W = {ranks}: the job ended {waited:?} after SIGSTOP of rank {victim} ({status}); it said:\n{err}");
    assert!(!status.success(), "the job exited 0 after a rank stalled");
    eprintln!("rank 0 used {waiting_cpu:.2} s of CPU in 7 s of waiting");
    assert!(
        waiting_cpu < 1.0,
        "rank 0 used {waiting_cpu:.2} s of CPU in 7 s of waiting in a collective"
    );
    assert!(
        waited < Duration::from_secs(40),
        "the job took {waited:?} to end (deadline 10 s)"
    );
    // Every live rank reports; at least one message gets out before the abort.
    let named = format!("ranks not answering (stopped, dead, unreachable, or busy outside collectives for longer than the timeout): {victim} (host");
    assert!(
        err.contains(&named),
        "no message names rank {victim}:\n{err}"
    );
    assert!(
        err.contains("collective watchdog") && err.contains("did not complete within 10 s"),
        "{err}"
    );
    // Nothing left: every rank, the stopped one included, is gone.
    std::thread::sleep(Duration::from_millis(500));
    let left: Vec<u32> = job.ranks.iter().copied().filter(|&p| alive(p)).collect();
    assert!(left.is_empty(), "ranks left running: {left:?}");
    let pgrep = std::process::Command::new("pgrep")
        .args(["-f", &dir.path().display().to_string()])
        .output()
        .unwrap();
    assert!(
        pgrep.stdout.is_empty(),
        "processes of this job left: {}",
        String::from_utf8_lossy(&pgrep.stdout)
    );
}

#[test]
fn a_stopped_rank_of_two_ends_the_job_named_within_40_s() {
    stopped_rank_ends_the_job(2);
}

#[test]
fn a_stopped_rank_of_four_ends_the_job_named_within_40_s() {
    stopped_rank_ends_the_job(4);
}

/// The deadline changes no number: 100 steps with the watchdog off equal the default run.
#[test]
fn without_a_fault_the_watchdog_changes_nothing() {
    let run = |timeout: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        let extra: Vec<String> = timeout
            .map(|t| format!("distributed.collective_timeout_s={t}"))
            .into_iter()
            .collect();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let args = train_args(dir.path(), 100, &extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = mpirun(2, &args);
        assert!(o.status.success(), "{timeout:?}: {}", stderr(&o));
        let m = metrics(dir.path());
        assert_eq!(m.len(), 100);
        (m, weights(dir.path()))
    };
    let (off, off_w) = run(Some("0"));
    let (default, default_w) = run(None);
    for key in ["loss", "grad_norm", "reward_margin", "reward_accuracy"] {
        assert_same_metric(key, &off, &default, 0.0);
    }
    assert_same_weights(&off_w, &default_w, 0.0);
}
