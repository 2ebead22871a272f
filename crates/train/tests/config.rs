//! The config rejects what it cannot run, before any work starts, naming the key.

use rpo_train::config::{
    DtypeName, LossName, OptimizerName, TextMode, TrainConfig, EMBEDDED_DEFAULT,
};
use rpo_train::error::chain;
use rpo_train::TrainError;

fn refused(overrides: &[&str]) -> TrainError {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).expect_err("should be refused")
}

/// The refusal as the binary prints it (every cause, joined by ": ").
fn err(overrides: &[&str]) -> String {
    chain(&refused(overrides))
}

#[test]
fn refusals_are_typed_and_name_the_key() {
    match refused(&["optim.name=sgd"]) {
        TrainError::ConfigParse { key, error } => {
            assert_eq!(key.as_deref(), Some("optim.name"));
            let e = error.to_string();
            assert!(e.contains("rmsprop") && e.contains("adamw"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    match refused(&["loss.beta=0"]) {
        TrainError::InvalidConfig { key, reason } => {
            assert_eq!(key, "loss.beta");
            assert!(
                reason.contains("loss.beta must be finite and > 0"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(refused(&["optim.lr"]), TrainError::Override(_)));
    let e = refused(&["zero.memory_budget=lots"]);
    assert!(
        matches!(
            e,
            TrainError::ConfigValue {
                key: "zero.memory_budget",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        chain(&e).starts_with("zero.memory_budget: "),
        "{}",
        chain(&e)
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run.toml");
    std::fs::write(
        &file,
        EMBEDDED_DEFAULT.replace("\nlr = 1e-5\n", "\nlr = -1\n"),
    )
    .unwrap();
    let e = TrainConfig::load(Some(&file), &[]).unwrap_err();
    match &e {
        TrainError::InConfig { origin, source } => {
            assert_eq!(origin, &file.display().to_string());
            assert!(
                matches!(
                    **source,
                    TrainError::InvalidConfig {
                        key: "optim.lr",
                        ..
                    }
                ),
                "{source:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    let missing = dir.path().join("absent.toml");
    let e = TrainConfig::load(Some(&missing), &[]).unwrap_err();
    assert!(matches!(e, TrainError::ConfigRead { .. }), "{e:?}");
    assert!(
        chain(&e).starts_with(&format!("cannot read config {}: ", missing.display())),
        "{}",
        chain(&e)
    );
}

#[test]
fn embedded_default_is_valid() {
    let cfg = TrainConfig::from_toml(EMBEDDED_DEFAULT, &[]).unwrap();
    assert_eq!(cfg.loss.name, LossName::Rpo);
    assert_eq!(cfg.model.preset.as_deref(), Some("tiny"));
}

#[test]
fn unknown_key_is_rejected_by_name() {
    let text = EMBEDDED_DEFAULT.replace("[optim]\n", "[optim]\nlearning_rate = 3\n");
    let e = chain(&TrainConfig::from_toml(&text, &[]).unwrap_err());
    assert!(e.contains("learning_rate"), "{e}");
    let e = err(&["loss.temperature=0.3"]);
    assert!(e.contains("temperature"), "{e}");
    let e = err(&["bogus_section.x=1"]);
    assert!(e.contains("bogus_section"), "{e}");
}

#[test]
fn overrides_set_any_key_with_typed_values() {
    let o = [
        "optim.lr=3e-5",
        "loss.name=dpo",
        "train.steps=7",
        "model.dtype=\"bf16\"",
        "optim.betas=[0.8, 0.9]",
    ]
    .map(String::from);
    let cfg = TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).unwrap();
    assert_eq!(cfg.optim.lr, 3e-5);
    assert_eq!(cfg.loss.name, LossName::Dpo);
    assert_eq!(cfg.train.steps, 7);
    assert_eq!(cfg.model.dtype, DtypeName::Bf16);
    assert_eq!(cfg.optim.betas, [0.8, 0.9]);
    let o = ["model.preset=", "model.path=/models/sft"].map(String::from);
    let cfg = TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).unwrap();
    assert_eq!(
        (cfg.model.preset, cfg.model.path),
        (None, Some("/models/sft".into()))
    );
    let e = err(&["optim.lr"]);
    assert!(e.contains("key=value"), "{e}");
    let e = err(&["train.steps=many"]);
    assert!(e.contains("steps"), "{e}");
}

#[test]
fn impossible_combinations_are_refused() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["loss.weighting=diagonal-paper", "loss.pairing=unpaired"],
            "needs paired data",
        ),
        (
            &["loss.weighting=diagonal-code", "loss.pairing=unpaired"],
            "needs paired data",
        ),
        (
            &[
                "data.format=unpaired",
                "data.train=x.jsonl",
                "loss.name=dpo",
            ],
            "needs paired data",
        ),
        (&["data.format=paired"], "needs data.train"),
        (&["loss.name=ppo"], "loss.name"),
        (
            &["train.global_batch_size=30", "train.micro_batch_size=16"],
            "multiple",
        ),
        (&["model.path=/x"], "exclusive"),
        (&["data.max_prompt_length=64"], "max_prompt_length"),
        (&["loss.beta=0"], "beta"),
        (&["loss.name=sft"], "SFT twice"),
        (&["optim.name=sgd"], "optim.name"),
        (&["optim.max_grad_norm=-1"], "max_grad_norm"),
        (&["optim.betas=[0.9, 1.0]"], "betas"),
        (&["embedding.dim=0"], "embedding.dim"),
        (&["embedding.text=response"], "embedding.text"),
        (&["embedding.cache=\"\""], "embedding.cache"),
        (&["embedding.cached=x.bin"], "cached"),
        (&["model.device=gpu"], "model.device"),
        // The default run warms up with SFT and gives no reference.path: the reference
        // is unknown until then.
        (&["reference.mode=precomputed"], "known before training"),
        (&["reference.cache=\"\""], "reference.cache"),
        (
            &[
                "data.format=paired",
                "data.train=x.jsonl",
                "data.eval_fraction=1.0",
            ],
            "data.eval_fraction",
        ),
        (
            &[
                "data.format=paired",
                "data.train=x.jsonl",
                "data.eval=y.jsonl",
                "data.eval_fraction=0.1",
            ],
            "set one",
        ),
        (&["data.eval_fraction=0.1"], "synthetic"),
        (
            &[
                "data.format=unpaired",
                "data.train=x.jsonl",
                "loss.pairing=unpaired",
                "data.eval_fraction=0.1",
            ],
            "has none",
        ),
        (
            &[
                "data.format=tldr",
                "data.train=x.jsonl",
                "data.columns.prompt=q",
            ],
            "data.columns",
        ),
        (
            &[
                "data.format=paired",
                "data.train=x.jsonl",
                "data.columns.answer=a",
            ],
            "answer",
        ),
    ];
    for (o, needle) in cases {
        let e = err(o);
        assert!(e.contains(needle), "{o:?}: expected {needle:?} in: {e}");
    }
}

/// Checks that depend on the number of ranks, made when the world size is known.
#[test]
fn world_size_dependent_combinations_are_refused() {
    let load = |o: &[&str]| {
        let o: Vec<String> = o.iter().map(|s| s.to_string()).collect();
        TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).unwrap()
    };
    let kto3 = load(&[
        "loss.name=kto",
        "train.micro_batch_size=3",
        "train.global_batch_size=6",
    ]);
    let e = kto3.validate_world(1).unwrap_err().to_string();
    assert!(e.contains("even"), "{e}");
    kto3.validate_world(2).unwrap(); // 3 × 2 = 6: balanced global micro-batches
    let rpo1 = load(&["train.micro_batch_size=1", "train.global_batch_size=4"]);
    let e = rpo1.validate_world(1).unwrap_err().to_string();
    assert!(e.contains("≥ 2"), "{e}");
    rpo1.validate_world(2).unwrap(); // global scope: a 2×2 matrix
    let local = load(&[
        "train.micro_batch_size=1",
        "train.global_batch_size=4",
        "contrast.scope=local",
    ]);
    let e = local.validate_world(2).unwrap_err().to_string();
    assert!(e.contains("scope local"), "{e}");
    let e = load(&["train.global_batch_size=32", "train.micro_batch_size=16"])
        .validate_world(4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("16 × 4"), "{e}");
    let e = load(&["contrast.scope=group:3", "train.global_batch_size=64"])
        .validate_world(4)
        .unwrap_err()
        .to_string();
    assert!(e.contains("divisible by 3"), "{e}");
    let e = load(&["model.device=cuda:1"])
        .validate_world(2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("local_rank"), "{e}");
    let e = err(&["contrast.scope=everywhere"]);
    assert!(e.contains("group:K"), "{e}");
    let e = err(&["distributed.backend=gloo"]);
    assert!(e.contains("distributed.backend"), "{e}");
}

#[test]
fn sft_may_train_on_unpaired_data() {
    let o = [
        "data.format=unpaired",
        "data.train=x.jsonl",
        "loss.name=sft",
        "train.sft_warmup_steps=0",
    ]
    .map(String::from);
    TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).unwrap();
}

#[test]
fn every_shipped_config_parses_and_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut seen = 0;
    for entry in walk(&dir) {
        if entry.extension().is_some_and(|e| e == "toml") {
            TrainConfig::load(Some(&entry), &[])
                .unwrap_or_else(|e| panic!("{}: {}", entry.display(), chain(&e)));
            seen += 1;
        }
    }
    assert!(
        seen >= 6,
        "expected the default and the paper configs, found {seen}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn tokenizer_follows_the_model_folder_unless_given() {
    let load = |o: &[&str]| {
        TrainConfig::from_toml(
            EMBEDDED_DEFAULT,
            &o.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap()
    };
    assert_eq!(load(&[]).tokenizer_path(), "builtin:synthetic");
    let from_model = load(&["model.preset=", "model.path=/m/sft"]);
    assert_eq!(from_model.tokenizer_path(), "/m/sft/tokenizer.json");
    let explicit = load(&[
        "model.preset=",
        "model.path=/m/sft",
        "tokenizer.path=/t.json",
    ]);
    assert_eq!(explicit.tokenizer_path(), "/t.json");
}

#[test]
fn embedding_text_mode_and_cache_have_defaults_and_overrides() {
    let cfg = TrainConfig::from_toml(EMBEDDED_DEFAULT, &[]).unwrap();
    assert_eq!(cfg.embedding.text, TextMode::Prompt);
    assert_eq!(cfg.embedding.cache, None);
    assert_eq!(
        cfg.embedding_cache_path(),
        cfg.out_dir.join("embeddings.bin"),
        "rpo-shard embed writes into out_dir by default"
    );
    let o = ["embedding.text=prompt+response", "embedding.cache=/c/e.bin"].map(String::from);
    let cfg = TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).unwrap();
    assert_eq!(cfg.embedding.text, TextMode::PromptResponse);
    assert_eq!(cfg.embedding_cache_path(), std::path::Path::new("/c/e.bin"));
}

#[test]
fn precomputed_reference_needs_a_known_reference_and_has_a_default_cache() {
    let ok = |o: &[&str]| {
        let o: Vec<String> = o.iter().map(|s| s.to_string()).collect();
        TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).unwrap()
    };
    let cfg = ok(&["reference.mode=precomputed", "train.sft_warmup_steps=0"]);
    assert_eq!(
        cfg.reference_cache_path(),
        cfg.out_dir.join("reference_logps.bin")
    );
    ok(&["reference.mode=precomputed", "reference.path=/m/ref"]);
    // SFT alone uses no reference, so nothing about it can be wrong.
    ok(&[
        "reference.mode=precomputed",
        "loss.name=sft",
        "train.sft_warmup_steps=0",
    ]);
    let cfg = ok(&["reference.cache=/c/r.bin"]);
    assert_eq!(cfg.reference_cache_path(), std::path::Path::new("/c/r.bin"));
}

#[test]
fn an_unknown_choice_names_the_key_and_lists_the_allowed_values() {
    for (set, key, allowed) in [
        ("optim.name=sgd", "optim.name", &["rmsprop", "adamw"][..]),
        (
            "loss.name=ppo",
            "loss.name",
            &["rpo", "dpo", "ipo", "kto", "sft"],
        ),
        (
            "loss.weighting=cosine",
            "loss.weighting",
            &["embedding", "uniform-paper", "diagonal-code"],
        ),
        ("loss.pairing=both", "loss.pairing", &["paired", "unpaired"]),
        (
            "reference.mode=remote",
            "reference.mode",
            &["live", "sharded", "offload", "precomputed"],
        ),
        ("model.dtype=fp16", "model.dtype", &["auto", "fp32", "bf16"]),
        (
            "data.format=csv",
            "data.format",
            &["synthetic", "paired", "hh", "tldr"],
        ),
        (
            "data.on_malformed=warn",
            "data.on_malformed",
            &["error", "skip"],
        ),
        (
            "embedding.model=e5",
            "embedding.model",
            &["minilm", "bag-of-words"],
        ),
        (
            "embedding.text=response",
            "embedding.text",
            &["prompt", "prompt+response"],
        ),
        (
            "distributed.backend=gloo",
            "distributed.backend",
            &["auto", "nccl"],
        ),
    ] {
        let e = err(&[set]);
        assert!(e.contains(key), "{set}: {e}");
        for a in allowed {
            assert!(
                e.contains(&format!("`{a}`")),
                "{set}: {a} not listed in {e}"
            );
        }
    }
}

/// Each optimizer name builds that optimizer; before the names were an enum, any name
/// other than "adamw" (a typo included) silently trained with RMSprop.
#[test]
fn optimizer_names_build_their_optimizer() {
    use rpo_train::trainer::build_optimizer;
    let cfg = |name: &str| {
        TrainConfig::from_toml(EMBEDDED_DEFAULT, &[format!("optim.name={name}")]).unwrap()
    };
    let adamw = cfg("adamw");
    assert_eq!(adamw.optim.name, OptimizerName::AdamW);
    // AdamW keeps two moments per parameter, RMSprop one (torch.optim's state).
    assert_eq!(build_optimizer(&adamw.optim).slots_per_param(), 2);
    assert_eq!(build_optimizer(&cfg("rmsprop").optim).slots_per_param(), 1);
    let e = err(&["optim.name=adam"]);
    assert!(e.contains("optim.name") && e.contains("`adamw`"), "{e}");
}

#[test]
fn data_files_are_one_path_or_a_list_and_columns_are_read() {
    use rpo_train::config::DataFiles;
    let o: Vec<String> = [
        "data.format=paired",
        "data.train=[\"a/*.parquet\", \"b.jsonl.gz\"]",
        "data.eval=c.json",
        "data.columns.chosen=response_j",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cfg = TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).unwrap();
    assert_eq!(
        cfg.data.train.as_ref().unwrap().patterns(),
        ["a/*.parquet", "b.jsonl.gz"]
    );
    assert_eq!(cfg.data.eval, Some(DataFiles::One("c.json".into())));
    assert_eq!(cfg.data.columns.column("chosen"), "response_j");
    assert_eq!(cfg.data.columns.column("rejected"), "rejected");
    // The resolved config prints and reads back the same.
    let again: TrainConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(again.data.train, cfg.data.train);
    assert_eq!(again.data.columns, cfg.data.columns);
}

#[test]
fn nan_infinite_and_out_of_range_hyperparameters_are_refused_by_name() {
    // TOML spells them nan and inf; NaN compares false with everything, so a check
    // written as `x <= 0` lets it through.
    for (key, values) in [
        ("optim.lr", &["nan", "inf", "-inf", "0", "-1e-3"][..]),
        ("train.sft_lr", &["nan", "inf", "0"][..]),
        ("loss.beta", &["nan", "inf", "0", "-0.1"][..]),
        ("loss.tau", &["nan", "inf", "0"][..]),
        ("optim.max_grad_norm", &["nan", "inf", "-1"][..]),
    ] {
        for v in values {
            let e = err(&[&format!("{key}={v}")]);
            assert!(e.contains(key), "{key}={v}: {e}");
        }
    }
    // Their ordinary values still pass.
    let o = [
        "optim.lr=1e-5",
        "loss.beta=0.1",
        "loss.tau=0.5",
        "optim.max_grad_norm=0",
    ]
    .map(String::from);
    TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).unwrap();
}

#[test]
fn reduce_dtype_and_memory_budget_are_checked() {
    let cfg = TrainConfig::from_toml(EMBEDDED_DEFAULT, &[]).unwrap();
    assert_eq!(cfg.zero.reduce_dtype, "fp32");
    assert_eq!(cfg.zero.reduce_kind(), tch::Kind::Float);
    let cfg = TrainConfig::from_toml(EMBEDDED_DEFAULT, &["zero.reduce_dtype=bf16".into()]).unwrap();
    assert_eq!(cfg.zero.reduce_kind(), tch::Kind::BFloat16);
    assert!(err(&["zero.reduce_dtype=fp16"]).contains("zero.reduce_dtype"));
    let e = err(&["zero.memory_budget=\"80 parsecs\""]);
    assert!(e.contains("zero.memory_budget"), "{e}");
    let cfg =
        TrainConfig::from_toml(EMBEDDED_DEFAULT, &["zero.memory_budget=\"80GiB\"".into()]).unwrap();
    assert_eq!(cfg.zero.memory_budget.as_deref(), Some("80GiB"));
}

#[test]
fn the_collective_deadline_defaults_to_600_s_and_refuses_nonsense() {
    let load = |o: &[&str]| {
        let o: Vec<String> = o.iter().map(|s| s.to_string()).collect();
        TrainConfig::from_toml(EMBEDDED_DEFAULT, &o).unwrap()
    };
    let cfg = load(&[]);
    assert_eq!(cfg.distributed.collective_timeout_s, 600.0);
    assert_eq!(
        cfg.distributed.watchdog().timeout,
        Some(std::time::Duration::from_secs(600))
    );
    assert_eq!(
        load(&["distributed.collective_timeout_s=0"])
            .distributed
            .watchdog()
            .timeout,
        None
    );
    for bad in ["-1", "nan", "inf"] {
        let e = err(&[&format!("distributed.collective_timeout_s={bad}")]);
        assert!(e.contains("distributed.collective_timeout_s"), "{bad}: {e}");
    }
}
