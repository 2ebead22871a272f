//! save_hf / load_hf: exact round trips, dtype, metadata, sharded folders, and the
//! errors a broken folder must produce.

mod common;

use std::path::Path;

use common::{tiny_config, token_ids};
use rpo_model::hf_io::{CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};
use rpo_model::safetensors_io::{read_safetensors, write_pt_safetensors};
use rpo_model::{load_hf, save_hf, Llama, LlamaConfig};
use tch::{nn::VarStore, Device, Kind, Tensor};

fn saved_tiny(config: &LlamaConfig, kind: Kind) -> (tempfile::TempDir, Llama, VarStore) {
    let dir = tempfile::tempdir().unwrap();
    let (model, vs) = Llama::init(config, Device::Cpu, kind, 7).unwrap();
    save_hf(dir.path(), &vs, config).unwrap();
    (dir, model, vs)
}

fn assert_same_variables(a: &VarStore, b: &VarStore) {
    let (a, b) = (a.variables(), b.variables());
    assert_eq!(a.len(), b.len());
    for (name, tensor) in &a {
        let other = b.get(name).unwrap_or_else(|| panic!("{name} not loaded"));
        assert_eq!(tensor.kind(), other.kind(), "{name}");
        assert!(tensor.equal(other), "{name} differs after the round trip");
    }
}

/// Rewrites the weights file through `edit`.
fn edit_weights(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) {
    let path = dir.join(WEIGHTS_FILE);
    let mut tensors = read_safetensors(&path).unwrap();
    edit(&mut tensors);
    write_pt_safetensors(&path, &tensors).unwrap();
}

fn load_error(dir: &Path) -> String {
    format!(
        "{:#}",
        load_hf(dir, Device::Cpu).expect_err("loading should fail")
    )
}

#[test]
fn fp32_round_trip_is_exact() {
    let config = LlamaConfig {
        tie_word_embeddings: false,
        attention_bias: true,
        mlp_bias: true,
        ..tiny_config()
    };
    let (dir, model, vs) = saved_tiny(&config, Kind::Float);
    let (loaded, loaded_vs, loaded_config) = load_hf(dir.path(), Device::Cpu).unwrap();
    assert_same_variables(&vs, &loaded_vs);
    assert_eq!(
        loaded_config,
        LlamaConfig {
            torch_dtype: Some("float32".into()),
            ..config.clone()
        }
    );
    assert_eq!(
        vs.variables().len(),
        2 + 2 * 16 + 1,
        "embed, lm_head, 2 layers x (7 weights + 7 biases + 2 norms), norm"
    );
    let numel: i64 = vs.variables().values().map(Tensor::numel).sum::<usize>() as i64;
    assert_eq!(numel, config.num_parameters());
    let ids = token_ids(2, 6, config.vocab_size, 1);
    assert!(model.forward(&ids).equal(&loaded.forward(&ids)));
}

#[test]
fn bf16_round_trip_keeps_the_dtype() {
    let (dir, _, vs) = saved_tiny(&tiny_config(), Kind::BFloat16);
    let written = LlamaConfig::from_file(&dir.path().join(CONFIG_FILE)).unwrap();
    assert_eq!(written.torch_dtype.as_deref(), Some("bfloat16"));
    let (_, loaded_vs, _) = load_hf(dir.path(), Device::Cpu).unwrap();
    assert_same_variables(&vs, &loaded_vs);
}

#[test]
fn weights_carry_format_pt_metadata_and_hf_names() {
    let (dir, _, _) = saved_tiny(&tiny_config(), Kind::Float);
    let bytes = std::fs::read(dir.path().join(WEIGHTS_FILE)).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    assert_eq!(header["__metadata__"], serde_json::json!({"format": "pt"}));
    for name in [
        "model.embed_tokens.weight",
        "model.layers.1.self_attn.k_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.layers.1.post_attention_layernorm.weight",
        "model.norm.weight",
    ] {
        assert!(header.get(name).is_some(), "{name} missing from the header");
    }
    // Tied: no lm_head tensor; k_proj is [kv_heads * head_dim, hidden] = [32, 64].
    assert!(header.get("lm_head.weight").is_none());
    assert_eq!(
        header["model.layers.1.self_attn.k_proj.weight"]["shape"],
        serde_json::json!([32, 64])
    );
}

#[test]
fn tied_checkpoint_with_an_lm_head_tensor_loads() {
    let (dir, _, vs) = saved_tiny(&tiny_config(), Kind::Float);
    edit_weights(dir.path(), |tensors| {
        let embed = tensors
            .iter()
            .find(|(n, _)| n == "model.embed_tokens.weight")
            .unwrap()
            .1
            .copy();
        tensors.push(("lm_head.weight".into(), embed));
    });
    let (_, loaded_vs, _) = load_hf(dir.path(), Device::Cpu).unwrap();
    assert_same_variables(&vs, &loaded_vs);
}

#[test]
fn missing_tensor_is_named_with_the_file() {
    let (dir, _, _) = saved_tiny(&tiny_config(), Kind::Float);
    edit_weights(dir.path(), |tensors| {
        tensors.retain(|(n, _)| n != "model.layers.1.mlp.up_proj.weight")
    });
    let error = load_error(dir.path());
    assert!(
        error.contains("model.layers.1.mlp.up_proj.weight") && error.contains(WEIGHTS_FILE),
        "{error}"
    );
}

#[test]
fn shape_mismatch_is_named_with_the_file() {
    let (dir, _, _) = saved_tiny(&tiny_config(), Kind::Float);
    let config = LlamaConfig {
        intermediate_size: 160,
        ..tiny_config()
    };
    config.to_file(&dir.path().join(CONFIG_FILE)).unwrap();
    let error = load_error(dir.path());
    let expected = [
        "model.layers.0.mlp.down_proj.weight",
        "[64, 172]",
        "[64, 160]",
        WEIGHTS_FILE,
        CONFIG_FILE,
    ];
    assert!(expected.iter().all(|part| error.contains(part)), "{error}");
}

#[test]
fn unexpected_tensor_is_an_error() {
    let (dir, _, _) = saved_tiny(&tiny_config(), Kind::Float);
    let config = LlamaConfig {
        num_hidden_layers: 1,
        ..tiny_config()
    };
    config.to_file(&dir.path().join(CONFIG_FILE)).unwrap();
    let error = load_error(dir.path());
    assert!(error.contains("model.layers.1."), "{error}");
}

#[test]
fn sharded_folder_with_index_loads() {
    let (dir, _, vs) = saved_tiny(&tiny_config(), Kind::Float);
    let tensors = read_safetensors(&dir.path().join(WEIGHTS_FILE)).unwrap();
    std::fs::remove_file(dir.path().join(WEIGHTS_FILE)).unwrap();
    let (first, second): (Vec<_>, Vec<_>) = tensors
        .into_iter()
        .partition(|(n, _)| n.contains("layers.0."));
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", &first),
        ("model-00002-of-00002.safetensors", &second),
    ] {
        write_pt_safetensors(&dir.path().join(file), part).unwrap();
        for (name, _) in part {
            weight_map.insert(name.clone(), file.into());
        }
    }
    let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": weight_map});
    std::fs::write(dir.path().join(WEIGHTS_INDEX_FILE), index.to_string()).unwrap();
    let (_, loaded_vs, _) = load_hf(dir.path(), Device::Cpu).unwrap();
    assert_same_variables(&vs, &loaded_vs);
}

#[test]
fn folder_without_weights_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    tiny_config()
        .to_file(&dir.path().join(CONFIG_FILE))
        .unwrap();
    assert!(load_error(dir.path()).contains(WEIGHTS_INDEX_FILE));
    assert!(format!(
        "{:#}",
        load_hf(&dir.path().join("nope"), Device::Cpu).unwrap_err()
    )
    .contains(CONFIG_FILE));
}
