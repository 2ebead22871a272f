//! What the integration tests share: the arguments of a training run, running the
//! binary (alone or under mpirun), reading and comparing runs, and the processes of a job.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_rpo-shard");

/// `rpo-shard <args>`, quiet but for warnings.
pub fn rpo_command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env("RPO_LOG", "warn");
    c
}

pub fn rpo(args: &[&str]) -> Output {
    rpo_command(args).output().expect("run rpo-shard")
}

/// `mpirun -n <ranks> rpo-shard <args>`. A missing mpirun fails the test: CI installs it.
pub fn mpirun_command(ranks: usize, args: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    c.args(["-n", &ranks.to_string(), "--oversubscribe", BIN])
        .args(args)
        .env("RPO_LOG", "warn")
        // Open MPI refuses root without these (CI containers run as root).
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    c
}

pub fn mpirun(ranks: usize, args: &[&str]) -> Output {
    mpirun_command(ranks, args).output().unwrap_or_else(|e| {
        panic!("cannot start mpirun ({e}): install Open MPI (scripts/setup.sh does)")
    })
}

/// `rpo-shard <args>` as one process (`ranks` = 1: no mpirun at all) or under mpirun.
pub fn rpo_on_command(ranks: usize, args: &[&str]) -> Command {
    if ranks == 1 {
        rpo_command(args)
    } else {
        mpirun_command(ranks, args)
    }
}

/// [`rpo_on_command`], run to its end.
pub fn rpo_on(ranks: usize, args: &[&str]) -> Output {
    if ranks == 1 {
        rpo(args)
    } else {
        mpirun(ranks, args)
    }
}

/// `train` with every `key=value` of `sets`, then of `extra`, given through `--set`.
pub fn train_args(sets: impl IntoIterator<Item = String>, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["train".to_string()];
    for kv in sets.into_iter().chain(extra.iter().map(|s| s.to_string())) {
        args.push("--set".into());
        args.push(kv);
    }
    args
}

/// `args` followed by `--resume <from>` when resuming.
pub fn with_resume(mut args: Vec<String>, from: Option<&Path>) -> Vec<String> {
    if let Some(r) = from {
        args.push("--resume".into());
        args.push(r.display().to_string());
    }
    args
}

/// Borrowed, for [`rpo`] and [`mpirun`].
pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Three steps of `micro` examples per rank and `global` per optimizer step, writing to
/// `out`: no warm-up, no evaluation, lr 1e-3 without a warm-up (the settings the
/// multi-rank comparisons share; each adds its own clipping and the like).
pub fn three_step_sets(out: &Path, micro: usize, global: usize) -> Vec<String> {
    vec![
        format!("out_dir={}", out.display()),
        format!("train.micro_batch_size={micro}"),
        format!("train.global_batch_size={global}"),
        "train.steps=3".into(),
        "train.sft_warmup_steps=0".into(),
        "data.synthetic_train=64".into(),
        "data.synthetic_eval=8".into(),
        "eval.max_examples=0".into(),
        "optim.lr=1e-3".into(),
        "optim.warmup_steps=0".into(),
    ]
}

/// The `evals` of a run's `summary.json`.
pub fn summary_evals(out: &Path) -> Vec<serde_json::Value> {
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    s["evals"].as_array().unwrap().clone()
}

/// A tiny, fast run of `steps` steps writing to `out`: bag-of-words embeddings, no
/// warm-up, no evaluation, no final checkpoint (the fault tests' run).
pub fn fast_run_sets(out: &Path, steps: usize) -> Vec<String> {
    vec![
        format!("out_dir={}", out.display()),
        "train.micro_batch_size=2".into(),
        "train.global_batch_size=8".into(),
        format!("train.steps={steps}"),
        "train.sft_warmup_steps=0".into(),
        "data.synthetic_train=64".into(),
        "data.synthetic_eval=8".into(),
        "eval.max_examples=0".into(),
        "embedding.model=bag-of-words".into(),
        "checkpoint.at_end=false".into(),
        "optim.lr=1e-3".into(),
        "optim.warmup_steps=0".into(),
    ]
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn metrics(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `(step, loss)` of every line of `out`'s metrics.
pub fn losses(out: &Path) -> Vec<(u64, f64)> {
    metrics(out)
        .iter()
        .map(|m| (m["step"].as_u64().unwrap(), m["loss"].as_f64().unwrap()))
        .collect()
}

/// The checkpoint folder of `step` in `out`'s default checkpoint root.
pub fn step_dir(out: &Path, step: usize) -> PathBuf {
    out.join(format!("checkpoints/step-{step:08}"))
}

/// Parameters of a saved model, by name.
pub fn weights(dir: &Path) -> Vec<(String, tch::Tensor)> {
    let mut w = tch::Tensor::read_safetensors(dir.join("model/model.safetensors")).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

/// Step by step, `key` of two metrics files agrees to `rtol` relative.
pub fn assert_same_metric(key: &str, a: &[serde_json::Value], b: &[serde_json::Value], rtol: f64) {
    assert_eq!(a.len(), b.len(), "step counts differ");
    for (x, y) in a.iter().zip(b) {
        let (u, v) = (x[key].as_f64(), y[key].as_f64());
        let (Some(u), Some(v)) = (u, v) else {
            panic!("step {}: {key} {u:?} vs {v:?}", x["step"]);
        };
        assert!(
            (u - v).abs() <= rtol * u.abs().max(1e-3),
            "step {}: {key} {u} vs {v}",
            x["step"]
        );
    }
}

/// Every parameter tensor agrees to `rtol` relative to its largest entry.
pub fn assert_same_weights(a: &[(String, tch::Tensor)], b: &[(String, tch::Tensor)], rtol: f64) {
    assert_eq!(a.len(), b.len(), "parameter counts differ");
    for ((name, x), (other, y)) in a.iter().zip(b) {
        assert_eq!(name, other);
        let diff = (x - y).abs().max().double_value(&[]);
        let scale = x.abs().max().double_value(&[]);
        assert!(
            diff <= rtol * scale,
            "{name}: max |Δ| {diff} (scale {scale})"
        );
    }
}

/// `rpo-shard init-model --out <out> <args>` (e.g. `--preset tiny`), which must succeed.
pub fn init_model(out: &Path, args: &[&str]) {
    let mut a = vec!["init-model", "--out", out.to_str().unwrap()];
    a.extend_from_slice(args);
    let o = rpo(&a);
    assert!(o.status.success(), "init-model {args:?}: {}", stderr(&o));
}

/// Pids of the processes whose parent is `parent` and whose environment names MPI rank `rank`.
pub fn rank_pids(parent: u32, rank: usize) -> Vec<u32> {
    let want = format!("OMPI_COMM_WORLD_RANK={rank}");
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Field 4 (after the parenthesised command name) is the parent pid.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if environ.split(|&b| b == 0).any(|v| v == want.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

pub fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// `kill -9 pid`, whatever became of it (for clean-up).
pub fn kill_9(pid: u32) {
    let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// `kill -<name> pid` (`STOP`, `TERM`, `9`, …), which must succeed.
pub fn signal(pid: u32, name: &str) {
    let s = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(s.success(), "kill -{name} {pid}");
}

/// What a job started with a piped stderr wrote there (read to its end).
pub fn read_stderr(child: &mut Child) -> String {
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    err
}

/// Waits until rank 0 of `job` has written `lines` steps into `out`'s metrics (the run
/// is under way); fails if the job ends first (with its stderr, when piped) or has not
/// got there within 240 s.
pub fn wait_for_steps(job: &mut Child, out: &Path, lines: usize) {
    let started = Instant::now();
    let metrics = out.join("metrics.jsonl");
    while std::fs::read_to_string(&metrics).map_or(true, |m| m.lines().count() < lines) {
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "training did not reach step {lines}"
        );
        if let Some(s) = job.try_wait().unwrap() {
            let err = job.stderr.is_some().then(|| read_stderr(job));
            panic!(
                "the job ended ({s}) before step {lines}:\n{}",
                err.unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `job` to end, at most `limit` after `since`; past it, kills the job and
/// fails, saying it was still running that long after `what`.
pub fn wait_at_most(job: &mut Child, since: Instant, limit: Duration, what: &str) -> ExitStatus {
    loop {
        if let Some(s) = job.try_wait().unwrap() {
            return s;
        }
        if since.elapsed() > limit {
            let _ = job.kill();
            panic!("the job was still running {limit:?} after {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
