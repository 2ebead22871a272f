//! What the integration tests share: running the binary (alone or under mpirun) and
//! comparing two runs.
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_rpo-shard");

pub fn rpo(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RPO_LOG", "warn")
        .output()
        .expect("run rpo-shard")
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
