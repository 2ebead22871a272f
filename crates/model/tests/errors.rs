//! What callers act on: `ModelError`'s variant (and the path or tensor it names), not
//! only its message.

mod common;

use std::path::Path;

use common::tiny_config;
use rpo_model::hf_io::{parse_weight_dtype, shard_file_name, CONFIG_FILE, WEIGHTS_FILE};
use rpo_model::{
    load_hf, preset, save_hf, save_hf_sharded, HfWriter, Llama, LlamaConfig, ModelError,
};
use tch::{Device, Kind, Tensor};

use rpo_peer::error_chain as chain;

fn saved_tiny() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (_, vs) = Llama::init(&tiny_config(), Device::Cpu, Kind::Float, 7).unwrap();
    save_hf(dir.path(), &vs, &tiny_config()).unwrap();
    dir
}

fn load_err(dir: &Path) -> ModelError {
    load_hf(dir, Device::Cpu)
        .map(|_| ())
        .expect_err("loading should fail")
}

/// `config.json` of `dir` with `field` set to `value`.
fn edit_config(dir: &Path, field: &str, value: serde_json::Value) {
    let path = dir.join(CONFIG_FILE);
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json[field] = value;
    std::fs::write(&path, json.to_string()).unwrap();
}

#[test]
fn unsupported_architecture_is_its_own_variant() {
    let dir = saved_tiny();
    edit_config(dir.path(), "model_type", "gpt2".into());
    edit_config(dir.path(), "architectures", serde_json::json!([]));
    let err = load_err(dir.path());
    let ModelError::Config { path, .. } = &err else {
        panic!("not a config error: {err:#}");
    };
    assert_eq!(path, &dir.path().join(CONFIG_FILE));
    assert!(
        matches!(err.reason(), ModelError::UnsupportedArchitecture { model_type } if model_type == "gpt2"),
        "{err:#}"
    );
    // With its cause, as the command line prints it (anyhow's `{:#}`).
    let message = chain(&err);
    assert!(message.starts_with("invalid model config"), "{message}");
    assert!(message.contains("llama, mistral, qwen2"), "{message}");
    let err = LlamaConfig::architecture_for("gpt2").unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedArchitecture { .. }));
}

#[test]
fn bad_config_field_names_the_field() {
    let dir = saved_tiny();
    edit_config(dir.path(), "num_key_value_heads", 3.into());
    let err = LlamaConfig::from_file(&dir.path().join(CONFIG_FILE)).unwrap_err();
    assert!(
        matches!(
            err.reason(),
            ModelError::ConfigField {
                field: "num_key_value_heads",
                ..
            }
        ),
        "{err:#}"
    );
    edit_config(dir.path(), "hidden_act", "gelu".into());
    edit_config(dir.path(), "num_key_value_heads", 2.into());
    let err = LlamaConfig::from_file(&dir.path().join(CONFIG_FILE)).unwrap_err();
    assert!(
        matches!(
            err.reason(),
            ModelError::ConfigField {
                field: "hidden_act",
                ..
            }
        ),
        "{err:#}"
    );
    std::fs::write(dir.path().join(CONFIG_FILE), "{ not json").unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::Json { .. }), "{err:#}");
}

#[test]
fn missing_files_are_the_missing_file_variant_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_err(&dir.path().join("nope"));
    match &err {
        ModelError::MissingFile { path, .. } => {
            assert_eq!(path, &dir.path().join("nope").join(CONFIG_FILE))
        }
        other => panic!("not MissingFile: {other:#}"),
    }

    tiny_config()
        .to_file(&dir.path().join(CONFIG_FILE))
        .unwrap();
    let err = load_err(dir.path());
    assert!(
        matches!(&err, ModelError::NoWeights { dir: d } if d == dir.path()),
        "{err:#}"
    );

    let (_, vs) = Llama::init(&tiny_config(), Device::Cpu, Kind::Float, 7).unwrap();
    let tensors = vs.variables().into_iter().collect();
    save_hf_sharded(dir.path(), tensors, &tiny_config(), Kind::Float, 50_000).unwrap();
    let count = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("model-")
        })
        .count();
    let victim = dir.path().join(shard_file_name(2, count));
    std::fs::remove_file(&victim).unwrap();
    match load_err(dir.path()) {
        ModelError::MissingFile { path, .. } => assert_eq!(path, victim),
        other => panic!("not MissingFile: {other:#}"),
    }
}

#[test]
fn shape_mismatch_and_missing_tensor_name_the_tensor() {
    let dir = saved_tiny();
    edit_config(dir.path(), "intermediate_size", 160.into());
    match load_err(dir.path()) {
        ModelError::Shape {
            name,
            file,
            got,
            expected,
            ..
        } => {
            assert_eq!(name, "model.layers.0.mlp.down_proj.weight");
            assert_eq!(file, dir.path().join(WEIGHTS_FILE));
            assert_eq!((got, expected), (vec![64, 172], vec![64, 160]));
        }
        other => panic!("not Shape: {other:#}"),
    }
    edit_config(dir.path(), "intermediate_size", 172.into());
    edit_config(dir.path(), "num_hidden_layers", 3.into());
    match load_err(dir.path()) {
        ModelError::MissingTensor { name, .. } => assert!(name.starts_with("model.layers.2.")),
        other => panic!("not MissingTensor: {other:#}"),
    }
    edit_config(dir.path(), "num_hidden_layers", 1.into());
    match load_err(dir.path()) {
        ModelError::UnexpectedTensor { name, .. } => assert!(name.starts_with("model.layers.1.")),
        other => panic!("not UnexpectedTensor: {other:#}"),
    }
}

#[test]
fn writer_and_argument_errors_are_typed() {
    let config = tiny_config();
    let (_, vs) = Llama::init(&config, Device::Cpu, Kind::Float, 5).unwrap();
    let specs: Vec<(String, Vec<i64>)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut writer = HfWriter::create(dir.path(), &specs, &config, Kind::Float, u64::MAX).unwrap();
    let err = writer
        .write(
            "model.norm.weight",
            &Tensor::zeros([3], (Kind::Float, Device::Cpu)),
        )
        .unwrap_err();
    assert!(
        matches!(&err, ModelError::WriteShape { name, got, .. } if name == "model.norm.weight" && got == &[3]),
        "{err:#}"
    );
    match writer.finish().unwrap_err() {
        ModelError::Unwritten { names } => assert_eq!(names.len(), specs.len()),
        other => panic!("not Unwritten: {other:#}"),
    }
    let no_embedding: Vec<_> = specs
        .iter()
        .filter(|(n, _)| n != "model.embed_tokens.weight")
        .cloned()
        .collect();
    let err = HfWriter::create(dir.path(), &no_embedding, &config, Kind::Float, u64::MAX)
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, ModelError::NotLlama), "{err:#}");

    assert!(matches!(
        preset("llama-9000").unwrap_err(),
        ModelError::UnknownPreset { name } if name == "llama-9000"
    ));
    assert!(matches!(
        parse_weight_dtype("fp8").unwrap_err(),
        ModelError::UnknownDtype { name } if name == "fp8"
    ));
}
