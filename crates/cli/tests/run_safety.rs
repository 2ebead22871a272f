//! No lost run: a signal stops every rank at one step with a checkpoint that resumes
//! bitwise; a run never writes over another run's files; checkpoints need one folder all
//! ranks see; the final checkpoint, model and summary survive each other's failure; and
//! resume refuses what it cannot honour.

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// Tiny DPO run (no warm-up) on 2 examples per step, unless `extra` says otherwise.
fn args(out: &Path, extra: &[&str]) -> Vec<String> {
    let sets = [
        format!("out_dir={}", out.display()),
        "train.global_batch_size=2".into(),
        "train.micro_batch_size=1".into(),
        "train.sft_warmup_steps=0".into(),
        "train.steps=2".into(),
        "loss.name=dpo".into(),
        "data.synthetic_train=64".into(),
        "eval.max_examples=0".into(),
        "embedding.model=bag-of-words".into(),
        "optim.warmup_steps=0".into(),
    ];
    train_args(sets, extra)
}

fn run(out: &Path, extra: &[&str], flags: &[&str]) -> Output {
    let mut a = args(out, extra);
    a.extend(flags.iter().map(|s| s.to_string()));
    rpo(&strs(&a))
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

fn refused(o: &Output, words: &[&str]) {
    let e = stderr(o);
    assert!(!o.status.success(), "accepted: {e}");
    for w in words {
        assert!(e.contains(w), "the message does not name {w:?}: {e}");
    }
}

fn steps_in(root: &Path) -> Vec<String> {
    let mut s: Vec<String> = std::fs::read_dir(root)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("step-"))
                .collect()
        })
        .unwrap_or_default();
    s.sort();
    s
}

fn kill(child: &Child, signal_name: &str) {
    signal(child.id(), signal_name);
}

#[test]
fn sigterm_to_mpirun_checkpoints_the_step_reached_and_resume_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let (stopped, full) = (dir.path().join("stopped"), dir.path().join("full"));
    // Far more steps than run before the signal, whatever the machine's speed; the
    // resumed and the uninterrupted run then both end 3 steps after the stop (the
    // learning rate is constant, so the step count changes no step).
    let a = args(&stopped, &["train.steps=100000", "zero.stage=1"]);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    // Open MPI 4.1's mpirun passes SIGTERM on to the ranks after this many seconds and
    // sends SIGKILL as long again later (default 1 s): the ranks' time to checkpoint.
    let mut child = mpirun_command(2, &a)
        .env("OMPI_MCA_odls_base_sigkill_timeout", "5")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_steps(&mut child, &stopped, 1);
    kill(&child, "TERM");
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert!(!o.status.success(), "{e}");
    assert!(
        e.contains("stopped by a signal after step") && e.contains("--resume latest"),
        "{e}"
    );
    let done = metrics(&stopped).len();
    assert_eq!(
        steps_in(&stopped.join("checkpoints")),
        [format!("step-{done:08}")]
    );

    let end = format!("train.steps={}", done + 3);
    let mut again = args(&stopped, &[&end, "zero.stage=1"]);
    again.extend(["--resume".into(), "latest".into()]);
    ok(mpirun(
        2,
        &again.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let uninterrupted = args(&full, &[&end, "zero.stage=1"]);
    ok(mpirun(
        2,
        &uninterrupted.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    assert_eq!(losses(&stopped), losses(&full));
    assert_same_weights(&weights(&full), &weights(&stopped), 0.0);
}

#[test]
fn a_signal_exits_with_status_75_and_a_second_one_aborts_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let start = |out: &Path| {
        let a = args(out, &["train.steps=100000", "checkpoint.at_end=false"]);
        let mut c = Command::new(BIN)
            .args(&a)
            .env("RPO_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for_steps(&mut c, out, 1);
        c
    };
    let one = dir.path().join("one");
    let child = start(&one);
    kill(&child, "INT");
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(75), "{}", stderr(&o));
    assert_eq!(steps_in(&one.join("checkpoints")).len(), 1);

    // Two signals at once (two kinds, which never merge into one pending signal): the
    // second ends the process by the signal's default action, with no checkpoint.
    let two = dir.path().join("two");
    let child = start(&two);
    kill(&child, "TERM");
    kill(&child, "INT");
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.signal().is_some(),
        "{:?}: {}",
        o.status,
        stderr(&o)
    );
    assert!(steps_in(&two.join("checkpoints")).is_empty());
}

#[test]
fn a_fresh_run_never_writes_over_an_earlier_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // An earlier, longer run's checkpoints: before, a fresh 2-step run deleted its own new
    // checkpoints (keep = 2 kept the older run's later steps) and `latest` named a
    // deleted folder.
    ok(run(&out, &["train.steps=4", "checkpoint.every=1"], &[]));
    let before = (steps_in(&out.join("checkpoints")), losses(&out));
    let o = run(&out, &["checkpoint.every=1"], &[]);
    refused(
        &o,
        &["already holds a run", "--resume latest", "--overwrite"],
    );
    assert_eq!((steps_in(&out.join("checkpoints")), losses(&out)), before);

    ok(run(&out, &["checkpoint.every=1"], &["--overwrite"]));
    assert_eq!(
        steps_in(&out.join("checkpoints")),
        ["step-00000001", "step-00000002"]
    );
    assert_eq!(losses(&out).len(), 2);
    let latest = std::fs::read_to_string(out.join("checkpoints/latest")).unwrap();
    assert!(out.join("checkpoints").join(latest.trim()).is_dir());
}

#[test]
fn a_second_run_in_the_same_out_dir_is_refused_by_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let a = args(&out, &["train.steps=100000"]);
    let mut first = Command::new(BIN)
        .args(&a)
        .env("RPO_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_steps(&mut first, &out, 1);
    let o = run(&out, &[], &["--overwrite"]);
    let _ = first.kill();
    let _ = first.wait();
    refused(
        &o,
        &["in use by another run", &format!("pid {}", first.id())],
    );
    // The first run's files are untouched.
    assert!(!losses(&out).is_empty());
}

#[test]
fn the_config_is_written_only_after_every_check_passes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    ok(run(&out, &[], &[]));
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    // Refused at loading the data, after the config used to be written.
    let missing = dir.path().join("missing.jsonl");
    let o = run(
        &out,
        &[
            "data.format=paired",
            &format!("data.train={}", missing.display()),
        ],
        &["--resume", "latest"],
    );
    refused(&o, &["missing.jsonl"]);
    assert_eq!(
        std::fs::read_to_string(out.join("config.toml")).unwrap(),
        config
    );
}

#[test]
fn checkpoints_need_one_folder_all_ranks_see() {
    // Rank 1 runs in its own mount namespace with an empty tmpfs over out_dir: the
    // node-local disk of a second node. Before, its shard of the final checkpoint failed
    // after the last step and the run ended with no model and no summary.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    std::fs::create_dir(&out).unwrap();
    let script = dir.path().join("node-local.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then\n  \
             exec unshare -m sh -c 'mount -t tmpfs tmpfs \"$0\" && exec \"$@\"' {out} {BIN} \"$@\"\nfi\nexec {BIN} \"$@\"\n",
            out = out.display()
        ),
    )
    .unwrap();
    let launch = |extra: &[&str]| {
        let a = args(&out, &[&["zero.stage=1"], extra].concat());
        let o = Command::new("mpirun")
            .args(["-n", "2", "--oversubscribe", "sh", script.to_str().unwrap()])
            .args(&a)
            .env("RPO_LOG", "warn")
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .output()
            .unwrap();
        o
    };
    let o = launch(&[]);
    refused(
        &o,
        &[
            "is not one folder for all ranks",
            "rank 1 on ",
            "checkpoint.dir",
        ],
    );
    assert!(!out.join("metrics.jsonl").exists(), "training started");

    // A shared checkpoint folder with out_dir still node-local: rank 1 writes only there.
    let shared = dir.path().join("shared-checkpoints");
    let o = launch(&[&format!("checkpoint.dir={}", shared.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(steps_in(&shared), ["step-00000002"]);
    assert!(shared.join("step-00000002/rank-00001.safetensors").exists());
    assert!(out.join("model").is_dir() && out.join("summary.json").exists());
}

#[test]
fn the_final_checkpoint_model_and_summary_survive_each_others_failure() {
    let dir = tempfile::tempdir().unwrap();
    let summary = |out: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
    };
    // A full disk under the checkpoints: a 64 KiB tmpfs (the probe fits, a shard not).
    let full = dir.path().join("full-disk");
    std::fs::create_dir_all(full.join("checkpoints")).unwrap();
    // SFT: no frozen reference, which is saved beside the checkpoints once at the start
    // (a full disk there stops the run before any work).
    let a = args(&full, &["loss.name=sft"]);
    let o = Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            "mount -t tmpfs -o size=64k tmpfs \"$0\" && exec \"$@\"",
        ])
        .arg(full.join("checkpoints"))
        .arg(BIN)
        .args(&a)
        .env("RPO_LOG", "warn")
        .output()
        .unwrap();
    refused(&o, &["final checkpoint", "No space left"]);
    assert!(full.join("model/model.safetensors").exists());
    let s = summary(&full);
    assert_eq!(s["steps"], 2);
    assert!(
        s["failed"][0]
            .as_str()
            .unwrap()
            .contains("final checkpoint"),
        "{s}"
    );

    // The model's folder taken by a file.
    let blocked = dir.path().join("model-blocked");
    std::fs::create_dir_all(&blocked).unwrap();
    std::fs::write(blocked.join("model"), "not a folder").unwrap();
    let o = run(&blocked, &[], &[]);
    refused(&o, &["model"]);
    assert_eq!(steps_in(&blocked.join("checkpoints")), ["step-00000002"]);
    let s = summary(&blocked);
    assert!(
        s["model_dir"].is_null() && s["failed"][0].as_str().unwrap().contains("model"),
        "{s}"
    );

    // summary.json taken by a folder.
    let no_summary = dir.path().join("summary-blocked");
    std::fs::create_dir_all(no_summary.join("summary.json")).unwrap();
    let o = run(&no_summary, &[], &[]);
    refused(&o, &["summary"]);
    assert_eq!(steps_in(&no_summary.join("checkpoints")), ["step-00000002"]);
    assert!(no_summary.join("model/model.safetensors").exists());
}

/// SFT warm-up (1 step) then RPO (1 step), a checkpoint after each.
fn two_phases(out: &Path, extra: &[&str]) -> Vec<String> {
    let mut e = vec![
        "loss.name=rpo",
        "train.micro_batch_size=2",
        "train.sft_warmup_steps=1",
        "train.steps=1",
        "checkpoint.every=1",
        "checkpoint.keep=0",
    ];
    e.extend_from_slice(extra);
    args(out, &e)
}

#[test]
fn resume_refuses_another_phase_objective_optimizer_or_model_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    ok(rpo(&two_phases(&first, &[])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()));
    let ckpt = |k: usize| first.join(format!("checkpoints/step-{k:08}"));
    let resume = |from: PathBuf, what: &str, extra: &[&str]| {
        let mut a = two_phases(&dir.path().join(what), extra);
        a.extend(["--resume".into(), from.display().to_string()]);
        rpo(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Before, each of these exited 0, ignoring the checkpoint's weights (or failed on a
    // cryptic optimizer-state error).
    let o = resume(ckpt(1), "no-warmup", &["train.sft_warmup_steps=0"]);
    refused(&o, &["SFT warm-up", "train.sft_warmup_steps = 0"]);
    let o = resume(ckpt(2), "dpo", &["loss.name=dpo"]);
    refused(&o, &["\"rpo-paired\"", "\"dpo\""]);
    let o = resume(ckpt(2), "adamw", &["optim.name=adamw"]);
    refused(&o, &["\"rmsprop\"", "\"adamw\""]);
    let o = resume(ckpt(2), "small", &["model.preset=small"]);
    refused(&o, &["hidden_size 64", "hidden_size 256"]);
}

#[test]
fn a_damaged_newest_checkpoint_names_the_newest_intact_one_and_fallback_resumes_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let extra = ["train.steps=3", "checkpoint.every=1", "checkpoint.keep=0"];
    ok(run(&out, &extra, &[]));
    let all = losses(&out);
    let shard = out.join("checkpoints/step-00000003/rank-00000.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&shard, &bytes).unwrap();

    let o = run(&out, &extra, &["--resume", "latest"]);
    refused(
        &o,
        &[
            "rank-00000.safetensors is corrupt",
            "step-00000002",
            "--fallback",
        ],
    );
    ok(run(&out, &extra, &["--resume", "latest", "--fallback"]));
    assert_eq!(
        losses(&out),
        all,
        "step 3 trained again from step 2 is the same step"
    );
}
