//! Multi-process runs under `mpirun`: W ranks must give what one process gives.
//!
//! The single-process run with the whole global micro-batch is the oracle: with `global`
//! contrast, W ranks × B examples each train exactly as 1 process × W·B examples.

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

/// A short, fast-moving run: no warm-up or evaluation, lr high enough that 3 steps move
/// every weight, clipping on (so the global gradient norm is exercised).
///
/// RMSprop's eps is raised from 1e-8 to 1e-3 so that the update is linear in the
/// gradient. With eps = 1e-8 its first steps are ≈ lr·10·sign(g): gradients that nearly
/// cancel (embedding rows of rare tokens) carry fp32 summation-order noise of ~1e-7
/// relative, and the near-sign step turns it into ~2e-4 relative parameter differences
/// between two exact computations (measured: 1 process × 8 vs 2 ranks × 4; 1e-6 at eps
/// 1e-5, 1e-7 at 1e-3). The losses and gradient norms agree to ~1e-8 either way.
fn run_args(out: &Path, micro: usize, global: usize, extra: &[&str]) -> Vec<String> {
    let mut sets = three_step_sets(out, micro, global);
    sets.extend(["optim.max_grad_norm=1.0".into(), "optim.eps=1e-3".into()]);
    train_args(sets, extra)
}

struct Run {
    metrics: Vec<serde_json::Value>,
    weights: Vec<(String, tch::Tensor)>,
    _dir: tempfile::TempDir,
}

/// `ranks` processes (1: no mpirun at all), `micro` examples per rank.
fn run(ranks: usize, micro: usize, global: usize, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(dir.path(), micro, global, extra);
    let o = rpo_on(ranks, &strs(&args));
    assert!(
        o.status.success(),
        "{ranks} rank(s), {extra:?}: {}",
        stderr(&o)
    );
    Run {
        metrics: metrics(dir.path()),
        weights: weights(dir.path()),
        _dir: dir,
    }
}

fn assert_same(what: &str, a: &Run, b: &Run) {
    eprintln!("checking {what}");
    assert_same_metric("loss", &a.metrics, &b.metrics, 1e-5);
    assert_same_metric("grad_norm", &a.metrics, &b.metrics, 1e-5);
    assert_same_metric("reward_accuracy", &a.metrics, &b.metrics, 1e-9);
    assert_same_weights(&a.weights, &b.weights, 1e-5);
}

#[test]
fn selftest_passes_on_2_and_4_ranks() {
    for ranks in [2, 4] {
        let o = mpirun(ranks, &["selftest"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{ranks} ranks: {out}\n{}", stderr(&o));
        assert!(
            out.contains(&format!("{ranks} rank(s), backend mpi")),
            "{out}"
        );
        assert!(out.contains(" 0 failed"), "{out}");
    }
}

#[test]
fn global_contrast_on_w_ranks_equals_one_process_with_the_whole_batch() {
    // (objective overrides, examples per rank): unpaired with 1 example per rank leaves
    // every rank with only wins or only losses, which must still train exactly.
    let cases: &[(&str, &[&str], usize)] = &[
        ("rpo paired", &["contrast.scope=global"], 4),
        (
            "rpo unpaired",
            &[
                "loss.pairing=unpaired",
                "loss.tau=0.75",
                "contrast.scope=global",
            ],
            1,
        ),
        ("dpo", &["loss.name=dpo"], 4),
    ];
    for &(name, extra, b) in cases {
        let global = 4 * b * 2; // W = 4 without accumulation, W = 2 with 2 micro-batches
        for ranks in [2, 4] {
            let one = run(1, ranks * b, global, extra);
            let many = run(ranks, b, global, extra);
            assert_same(
                &format!("{name}: {ranks} ranks × {b} vs 1 × {}", ranks * b),
                &one,
                &many,
            );
        }
    }
}

#[test]
fn row_partitioned_equals_replicated_in_training() {
    let form = |f: &str| run(2, 4, 16, &[&format!("contrast.form={f}")]);
    assert_same(
        "row-partitioned vs replicated",
        &form("replicated"),
        &form("row-partitioned"),
    );
}

#[test]
fn local_and_group_scopes_match_their_definitions() {
    // Local: the mean over ranks of each rank's own matrix, which is what one process does
    // when it accumulates gradients over the same micro-batches (the global micro-batch is
    // split in rank order, and one process draws the same examples in the same order).
    // group:2 on 4 ranks × 2 examples: one matrix per pair of ranks, i.e. per 4 examples.
    let one = run(1, 4, 16, &[]);
    assert_same(
        "local on 2 ranks × 4",
        &one,
        &run(2, 4, 16, &["contrast.scope=local"]),
    );
    assert_same(
        "group:2 on 4 ranks × 2",
        &one,
        &run(4, 2, 16, &["contrast.scope=group:2"]),
    );
    // And the scopes differ: one 8-row matrix is not two 4-row ones, so the comparisons
    // above could fail.
    let global = run(2, 4, 16, &["contrast.scope=global"]);
    let largest = one
        .weights
        .iter()
        .zip(&global.weights)
        .map(|((_, a), (_, b))| (a - b).abs().max().double_value(&[]))
        .fold(0.0, f64::max);
    assert!(
        largest > 1e-4,
        "local and global trained alike (max |Δ| {largest})"
    );
}

/// An untied model whose units' parameter counts divide by neither 2 nor 4 ranks times
/// the 8-element shard alignment (hidden 24, 3 heads on 1 kv head, MLP 45, vocab 517),
/// so shard boundaries fall inside tensors and every unit is padded.
fn odd_model(dir: &Path) -> std::path::PathBuf {
    let base = dir.join("base");
    init_model(&base, &["--preset", "tiny"]);
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("config.json")).unwrap()).unwrap();
    for (key, value) in [
        ("hidden_size", 24),
        ("intermediate_size", 45),
        ("num_attention_heads", 3),
        ("num_key_value_heads", 1),
        ("vocab_size", 517),
    ] {
        config[key] = value.into();
    }
    config["tie_word_embeddings"] = false.into();
    let json = dir.join("odd.json");
    std::fs::write(&json, config.to_string()).unwrap();
    let model = dir.join("odd");
    let o = rpo(&[
        "init-model",
        "--config",
        json.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    model
}

/// Ψ as the ZeRO buffers hold it on `ranks` ranks: each unit (embedding, each layer, final
/// norm + head) padded to a multiple of ranks × 8 elements.
fn padded_parameters(weights: &[(String, tch::Tensor)], ranks: i64) -> i64 {
    let mut units: std::collections::BTreeMap<String, i64> = Default::default();
    for (name, t) in weights {
        let unit = match name.strip_prefix("model.layers.") {
            Some(rest) => rest.split('.').next().unwrap().to_string(),
            None if name.starts_with("model.embed_tokens") => "embed".into(),
            None => "head".into(),
        };
        *units.entry(unit).or_default() += t.numel() as i64;
    }
    let block = ranks * 8;
    units
        .values()
        .map(|n| (n + block - 1) / block * block)
        .sum()
}

#[test]
fn zero_stages_on_1_2_4_ranks_reach_the_parameters_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let model = odd_model(dir.path());
    let model_arg = format!("model.path={}", model.display());
    // (what, global batch, max grad norm): 16 examples are 2 micro-batches per rank.
    for (what, global, clip) in [
        ("2 micro-batches per step, clipping at 1", 16, "1.0"),
        ("1 micro-batch per step, no clipping", 8, "0"),
    ] {
        let clip = format!("optim.max_grad_norm={clip}");
        let args = |stage: u8| {
            vec![
                model_arg.clone(),
                "model.preset=".to_string(),
                "tokenizer.path=builtin:synthetic".to_string(),
                "train.steps=5".into(),
                clip.clone(),
                format!("zero.stage={stage}"),
            ]
        };
        let run_stage = |ranks: usize, per_rank: usize, stage: u8| {
            let a = args(stage);
            run(
                ranks,
                per_rank,
                global,
                &a.iter().map(String::as_str).collect::<Vec<_>>(),
            )
        };
        let oracle = run_stage(1, 8, 0);
        for stage in 0..=3u8 {
            for ranks in [1, 2, 4] {
                if (stage, ranks) == (0, 1) {
                    continue;
                }
                let per_rank = global / ranks / (global / 8);
                let r = run_stage(ranks, per_rank, stage);
                assert_same(
                    &format!("{what}: stage {stage} on {ranks} ranks"),
                    &oracle,
                    &r,
                );
                if global == 8 && ranks > 1 && stage > 0 {
                    // Bytes per step per rank: reduce-scatter + all-gather of Ψ (2Ψ), plus a
                    // forward and a backward all-gather in stage 3 instead of the update's
                    // (3Ψ); fp32; plus the 8-byte all-reduce of the squared gradient norm.
                    let psi = padded_parameters(&r.weights, ranks as i64) * 4;
                    let expected = if stage == 3 { 3 * psi } else { 2 * psi } + 8;
                    for m in &r.metrics {
                        assert_eq!(
                            m["zero_bytes"].as_i64(),
                            Some(expected),
                            "stage {stage}, {ranks} ranks: bytes per step"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn killing_one_rank_ends_the_whole_job_naming_the_rank() {
    let dir = tempfile::tempdir().unwrap();
    let args = run_args(dir.path(), 4, 8, &["train.steps=100000"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = mpirun_command(2, &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start mpirun");
    // Wait until training is under way (rank 0 has written a step).
    wait_for_steps(&mut child, dir.path(), 2);
    let (victim, survivor) = (rank_pids(child.id(), 1), rank_pids(child.id(), 0));
    assert!(
        victim.len() == 1 && survivor.len() == 1,
        "ranks {victim:?} / {survivor:?}"
    );
    let killed_at = Instant::now();
    signal(victim[0], "9");
    let status = wait_at_most(
        &mut child,
        killed_at,
        Duration::from_secs(30),
        "rank 1 was killed",
    );
    let waited = killed_at.elapsed();
    let err = read_stderr(&mut child);
    assert!(!status.success(), "the job exited 0 after losing a rank");
    assert!(
        err.contains("rank 1"),
        "the message does not name rank 1:\n{err}"
    );
    // mpirun may return while the surviving rank is still being killed (it first gets
    // SIGTERM, on which it starts to finish its step, then SIGKILL): allow it a moment.
    let exited = Instant::now();
    while alive(survivor[0]) && exited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !alive(survivor[0]),
        "rank 0 (pid {}) is left running 10 s after mpirun ended",
        survivor[0]
    );
    eprintln!("job ended {waited:?} after the kill; mpirun said:\n{err}");
}

/// `rpo-shard precompute-ref <flags>` for the run `run(ranks, micro, global, extra)`
/// trains (`extra` names the cache), with `failpoint` set as RPO_SHARD_FAILPOINT.
fn precompute(
    ranks: usize,
    micro: usize,
    global: usize,
    extra: &[&str],
    flags: &[&str],
    failpoint: Option<&str>,
) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut args = run_args(dir.path(), micro, global, extra);
    args[0] = "precompute-ref".into();
    args.extend(flags.iter().map(|f| f.to_string()));
    let mut c = rpo_on_command(ranks, &strs(&args));
    if let Some(f) = failpoint {
        c.env("RPO_SHARD_FAILPOINT", f);
    }
    c.output().unwrap()
}

/// precompute-ref's report (rank 0's one JSON line).
fn report(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "precompute-ref: {}", stderr(o));
    let out = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(out.lines().last().expect("a report line")).unwrap()
}

fn summary_evals(run: &Run) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(run._dir.path().join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    summary["evals"].as_array().unwrap().clone()
}

fn init_reference_model(dir: &Path) -> std::path::PathBuf {
    let base = dir.join("ref");
    init_model(&base, &["--preset", "tiny", "--seed", "5"]);
    base
}

#[test]
fn precomputed_reference_trains_like_live_under_zero3_on_2_ranks() {
    // The reference as the initial policy (paired RPO; KTO, whose mismatched KL sequences
    // the cache must hold too; unpaired RPO), and as reference.path after a 2-step SFT
    // warm-up. Reward accuracy on 8 held-out pairs reads the cache as well. precompute-ref
    // runs its reference in each placement (sharded: every rank in step, as many forwards
    // as the busiest one).
    let dir = tempfile::tempdir().unwrap();
    let path = format!(
        "reference.path={}",
        init_reference_model(dir.path()).display()
    );
    let cache = dir.path().join("ref.bin");
    let cache_arg = format!("reference.cache={}", cache.display());
    let cases: [(&str, &[&str]); 4] = [
        ("live", &[]),
        ("sharded", &["loss.name=kto"]),
        (
            "offload",
            &["loss.pairing=unpaired", "loss.weighting=uniform-code"],
        ),
        ("sharded", &[path.as_str(), "train.sft_warmup_steps=2"]),
    ];
    for (mode, case) in cases {
        let mut extra = vec![
            "zero.stage=3",
            "train.steps=5",
            "eval.max_examples=8",
            "eval.judge=false",
            cache_arg.as_str(),
        ];
        extra.extend_from_slice(case);
        let live = run(2, 4, 8, &extra);
        let written = report(&precompute(2, 4, 8, &extra, &["--mode", mode], None));
        assert_eq!(written["status"], "written", "{written}");
        extra.push("reference.mode=precomputed");
        let pre = run(2, 4, 8, &extra);
        eprintln!("checking precomputed (by {mode}) vs live, {case:?}");
        assert_same_metric("loss", &live.metrics, &pre.metrics, 1e-6);
        // Reward statistics exist in the preference phase and in evaluations against a
        // reference (the final one always).
        let scored = |m: &[serde_json::Value]| -> Vec<serde_json::Value> {
            let scored = m.iter().filter(|x| x["reward_accuracy"].is_number());
            scored.cloned().collect()
        };
        let (live_evals, pre_evals) = (scored(&summary_evals(&live)), scored(&summary_evals(&pre)));
        assert!(
            !pre_evals.is_empty(),
            "no evaluation reported reward accuracy"
        );
        for (a, b, what) in [
            (scored(&live.metrics), scored(&pre.metrics), "steps"),
            (live_evals, pre_evals, "evals"),
        ] {
            eprintln!("  {what}");
            assert_same_metric("reward_accuracy", &a, &b, 1e-9);
            assert_same_metric("reward_margin", &a, &b, 1e-6);
        }
        assert_same_weights(&live.weights, &pre.weights, 1e-6);
    }
}

/// Without reference.path the reference is the initial policy, identified by its weights'
/// hashes. Under stage 3 they are hashed one gathered unit at a time (never the whole
/// model on a rank), and must identify the same weights as one process holding them all.
#[test]
fn the_initial_policys_fingerprint_is_the_same_on_any_ranks_and_stage() {
    let fingerprint = |ranks: usize, stage: &str| -> String {
        let o = precompute(ranks, 4, 8, &[stage, "train.steps=2"], &[], None);
        report(&o)["reference_fingerprint"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let one = fingerprint(1, "zero.stage=0");
    assert_eq!(one.len(), 16, "{one}");
    assert_eq!(one, fingerprint(2, "zero.stage=3"));
    assert_eq!(one, fingerprint(2, "zero.stage=2"));
}

#[test]
fn a_reference_cache_for_other_data_or_another_reference_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = format!(
        "reference.path={}",
        init_reference_model(dir.path()).display()
    );
    let cache = format!("reference.cache={}", dir.path().join("ref.bin").display());
    let extra = [cache.as_str(), "train.steps=2"];
    report(&precompute(1, 4, 8, &extra, &[], None));
    let train_error = |more: &[&str]| {
        let mut a = extra.to_vec();
        a.push("reference.mode=precomputed");
        a.extend_from_slice(more);
        let args = run_args(dir.path(), 4, 8, &a);
        let o = rpo(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(!o.status.success(), "{more:?}: accepted");
        stderr(&o)
    };
    let e = train_error(&["data.synthetic_train=48"]);
    assert!(
        e.contains("data fingerprint") && !e.contains("reference fingerprint"),
        "{e}"
    );
    assert!(e.contains("rpo-shard precompute-ref"), "{e}");
    let e = train_error(&[path.as_str()]);
    assert!(
        e.contains("reference fingerprint") && !e.contains("data fingerprint"),
        "{e}"
    );
    // The initial policy of another seed is another reference; it also draws other batches.
    let e = train_error(&["seed=1"]);
    assert!(
        e.contains("reference fingerprint") && e.contains("data fingerprint"),
        "{e}"
    );
    let e = train_error(&["reference.cache=/nonexistent/ref.bin"]);
    assert!(
        e.contains("no reference cache") && e.contains("precompute-ref"),
        "{e}"
    );
}

#[test]
fn an_interrupted_precompute_leaves_nothing_train_accepts_and_a_rerun_completes_it() {
    for (failpoint, reused, rerun) in [
        // Rank 1 dies before its part is in place (rank 0's may or may not be); the rerun's
        // sharded reference keeps a rank with a reused part in step with the other.
        ("precompute-ref-part@1", None, ["--mode", "sharded"]),
        // Every part is finished; rank 0 dies before renaming the merged cache.
        ("precompute-ref-before-rename", Some(2), ["--mode", "live"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache").join("ref.bin");
        let cache_arg = format!("reference.cache={}", cache.display());
        let extra = ["zero.stage=3", "train.steps=2", cache_arg.as_str()];
        let o = precompute(2, 4, 8, &extra, &[], Some(failpoint));
        assert!(!o.status.success(), "{failpoint}: did not fire");
        assert!(!cache.exists(), "{failpoint}: a cache is in place");
        let mut train = extra.to_vec();
        train.push("reference.mode=precomputed");
        let args = run_args(dir.path(), 4, 8, &train);
        let o = mpirun(2, &args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            !o.status.success(),
            "{failpoint}: train accepted the leftovers"
        );
        assert!(stderr(&o).contains("no reference cache"), "{}", stderr(&o));

        let again = report(&precompute(2, 4, 8, &extra, &rerun, None));
        assert_eq!(again["status"], "written");
        if let Some(n) = reused {
            assert_eq!(again["reused_parts"], n, "{again}");
            assert_eq!(again["forwards"], 0, "{again}");
        }
        // Only the cache is left: no parts, no temporary files.
        let names: Vec<_> = std::fs::read_dir(cache.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["ref.bin"], "{failpoint}");
        let live = run(2, 4, 8, &extra);
        let pre = run(2, 4, 8, &train);
        assert_same_metric("loss", &live.metrics, &pre.metrics, 1e-6);
        assert_same_weights(&live.weights, &pre.weights, 1e-6);
        // A third run finds it up to date.
        let current = report(&precompute(2, 4, 8, &extra, &[], None));
        assert_eq!(current["status"], "up to date", "{current}");
    }
}

#[test]
fn reference_modes_train_alike_under_zero3_on_2_ranks() {
    // The reference is the policy after a 2-step SFT warm-up (a copy of a sharded policy),
    // and, separately, a Hugging Face folder given as reference.path.
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("ref");
    init_model(&base, &["--preset", "tiny", "--seed", "5"]);
    let path = format!("reference.path={}", base.display());
    for extra in [vec!["train.sft_warmup_steps=2"], vec![path.as_str()]] {
        let with_mode = |mode: &str| {
            let mut a: Vec<String> = vec![
                "zero.stage=3".into(),
                "train.steps=5".into(),
                format!("reference.mode={mode}"),
            ];
            a.extend(extra.iter().map(|s| s.to_string()));
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            run(2, 4, 8, &a)
        };
        let live = with_mode("live");
        for mode in ["sharded", "offload"] {
            let other = with_mode(mode);
            eprintln!("checking {mode} vs live, {extra:?}");
            assert_same_metric("loss", &live.metrics, &other.metrics, 1e-6);
            let preference = |m: &[serde_json::Value]| -> Vec<serde_json::Value> {
                m.iter().filter(|x| x["phase"] != "sft").cloned().collect()
            };
            assert_same_metric(
                "reward_accuracy",
                &preference(&live.metrics),
                &preference(&other.metrics),
                1e-9,
            );
            assert_same_weights(&live.weights, &other.weights, 1e-6);
        }
    }
}

#[test]
fn generate_on_2_ranks_writes_what_one_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    init_model(&model, &["--preset", "tiny"]);
    // The suite's held-out questions as a prompts file; reference and family are carried.
    let prompts = dir.path().join("prompts.jsonl");
    let lines: String = rpo_data::synthetic::generate(rpo_data::synthetic::Split::Eval, 16, 0)
        .iter()
        .map(|q| {
            serde_json::json!({"prompt": q.prompt, "reference": q.chosen, "family": q.family.name()})
                .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&prompts, lines).unwrap();
    for sampling in [
        &["--temperature", "0"][..],
        &["--temperature", "1.0", "--top-p", "0.9", "--seed", "3"],
    ] {
        let outputs: Vec<String> = [1, 2]
            .iter()
            .map(|&ranks| {
                let out = dir.path().join(format!("gen-{ranks}.jsonl"));
                let mut a = vec![
                    "generate",
                    "--model",
                    model.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                    "--max-prompts",
                    "7",
                    "--max-new-tokens",
                    "6",
                    "--prompts",
                    prompts.to_str().unwrap(),
                ];
                a.extend_from_slice(sampling);
                let o = rpo_on(ranks, &a);
                assert!(o.status.success(), "{}", stderr(&o));
                std::fs::read_to_string(&out).unwrap()
            })
            .collect();
        assert_eq!(outputs[0], outputs[1], "{sampling:?}");
        let lines: Vec<serde_json::Value> = outputs[0]
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 7);
        assert!(lines.iter().all(|l| l["prompt"].is_string()
            && l["reference"].is_string()
            && l["family"].is_string()));
    }
}

#[test]
fn shared_prompts_and_packed_rows_train_like_padded_rows_on_1_and_2_ranks() {
    // The padded `[2B, T]` layout of the reference code is the oracle; 5 steps.
    let padded = [
        "train.share_prompt=false",
        "train.pack=false",
        "train.steps=5",
    ];
    let cases: &[(&str, usize, &[&str])] = &[
        ("shared prompt + packing, stage 0, 1 process", 1, &[]),
        (
            "shared prompt + packing, stage 3 (checkpointing), sharded reference, 2 ranks",
            2,
            &["zero.stage=3", "reference.mode=sharded"],
        ),
        (
            "shared prompt without packing, stage 2, offloaded reference, 2 ranks",
            2,
            &["zero.stage=2", "train.pack=false", "reference.mode=offload"],
        ),
        (
            "packing without sharing, stage 1, kept graphs, 1 process",
            1,
            &[
                "zero.stage=1",
                "train.share_prompt=false",
                "zero.activation_checkpointing=false",
            ],
        ),
    ];
    let oracle = run(1, 8, 8, &padded);
    for &(what, ranks, extra) in cases {
        let mut args = vec!["train.steps=5"];
        args.extend_from_slice(extra);
        let r = run(ranks, 8 / ranks, 8, &args);
        assert_same(what, &oracle, &r);
        let (m, o) = (&r.metrics[0], &oracle.metrics[0]);
        assert_eq!(m["tokens"], o["tokens"], "{what}: real tokens");
        // The synthetic suite's sequences are of nearly one length: packing alone (rows
        // as wide as the longest sequence) saves nothing there but never costs more
        // (crates/train/tests/packing.rs checks the saving on varied lengths); a shared
        // prompt always saves.
        let (computed, padded) = (m["tokens_computed"].as_u64(), o["tokens_computed"].as_u64());
        let shared = !extra.contains(&"train.share_prompt=false");
        assert!(
            computed < padded || (!shared && computed <= padded),
            "{what}: computed {} vs padded {}",
            m["tokens_computed"],
            o["tokens_computed"]
        );
    }
}
