//! Test support: find and run the Python peers that rpo-shard is checked against.
//!
//! Peers (PyTorch, transformers, sentence-transformers) live in the project
//! virtualenv that `scripts/setup.sh` creates. A missing peer is a test failure,
//! never a skip: CI installs every peer, so absence means the set-up is broken.
//! [`tensors`] exchanges tensors with a peer and compares its answers.
//! [`judge_server`] stands in for an OpenAI-compatible chat endpoint (no Python needed).

pub mod judge_server;
pub mod tensors;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("crates/peer lives two levels below the workspace root")
        .to_path_buf()
}

/// The Python interpreter of the project virtualenv (`RPO_PYTHON` overrides).
pub fn python() -> PathBuf {
    let py = std::env::var_os("RPO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    assert!(
        py.exists(),
        "Python peer interpreter {} not found: run `bash scripts/setup.sh` (or set RPO_PYTHON)",
        py.display()
    );
    py
}

/// Path of a peer script under `tests/peers/`.
pub fn script(name: &str) -> PathBuf {
    let p = workspace_root().join("tests/peers").join(name);
    assert!(p.exists(), "peer script {} is missing", p.display());
    p
}

/// Run `tests/peers/<name>` with `args`; panics with the peer's stderr if it fails.
/// Returns its stdout.
pub fn run(name: &str, args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(script(name))
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot start Python peer {name}: {e}"));
    assert!(
        out.status.success(),
        "Python peer {name} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a peer that prints one JSON object on its last stdout line.
pub fn run_json(name: &str, args: &[&str]) -> serde_json::Value {
    let out = run(name, args);
    let last = out.lines().last().unwrap_or_default();
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("peer {name} printed no JSON on its last line ({e}):\n{out}"))
}

/// `err` and every cause under it, joined by ": ": the message as the binary prints it
/// (anyhow's `{:#}`), for tests of the crates below the binary, which have no anyhow.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}
