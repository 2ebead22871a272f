//! save_hf / load_hf: exact round trips, dtype, metadata, sharded folders, and the
//! errors a broken folder must produce.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{tiny_config, token_ids};
use rpo_model::hf_io::{shard_file_name, CONFIG_FILE, WEIGHTS_FILE, WEIGHTS_INDEX_FILE};
use rpo_model::safetensors_io::{read_safetensors, write_pt_safetensors};
use rpo_model::{load_hf, save_hf, save_hf_sharded, HfCheckpoint, Llama, LlamaConfig};
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

/// The JSON header of a safetensors file.
fn header(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + len]).unwrap()
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
    let header = header(&dir.path().join(WEIGHTS_FILE));
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

/// Bytes per shard that split the untied tiny model (fp32) into many files: the
/// embedding (24,832 bytes) fits, an MLP matrix (44,032 bytes) only alone.
const SMALL_SHARD: u64 = 50_000;

fn untied_config() -> LlamaConfig {
    LlamaConfig {
        tie_word_embeddings: false,
        ..tiny_config()
    }
}

/// An fp32 model saved by save_hf_sharded as `kind` in shards of at most `max` bytes.
fn saved_sharded(kind: Kind, max: u64) -> (tempfile::TempDir, Llama, VarStore) {
    let config = untied_config();
    let dir = tempfile::tempdir().unwrap();
    let (model, vs) = Llama::init(&config, Device::Cpu, Kind::Float, 5).unwrap();
    let tensors = vs.variables().into_iter().collect();
    save_hf_sharded(dir.path(), tensors, &config, kind, max).unwrap();
    (dir, model, vs)
}

fn weight_map(dir: &Path) -> serde_json::Map<String, serde_json::Value> {
    let text = std::fs::read_to_string(dir.join(WEIGHTS_INDEX_FILE)).unwrap();
    let index: serde_json::Value = serde_json::from_str(&text).unwrap();
    index["weight_map"].as_object().unwrap().clone()
}

/// The files the index maps tensors to.
fn shard_files(dir: &Path) -> BTreeSet<String> {
    weight_map(dir)
        .values()
        .map(|f| f.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sharded_save_round_trips_exactly_with_a_transformers_index() {
    let (dir, model, vs) = saved_sharded(Kind::Float, SMALL_SHARD);
    let dir = dir.path();
    assert!(!dir.join(WEIGHTS_FILE).exists());
    let files = shard_files(dir);
    let count = files.len();
    assert!(count >= 3, "only {count} shards");
    let expected: BTreeSet<String> = (1..=count).map(|i| shard_file_name(i, count)).collect();
    assert_eq!(files, expected);
    assert_eq!(shard_file_name(2, 7), "model-00002-of-00007.safetensors");

    // Name order across files, greedy packing, the metadata, and the index's total.
    let mut names_in_file_order = Vec::new();
    let mut total = 0;
    let mut previous_bytes: Option<(u64, u64)> = None;
    for file in &expected {
        let header = header(&dir.join(file));
        assert_eq!(header["__metadata__"], serde_json::json!({"format": "pt"}));
        let mut entries: Vec<(&String, u64, u64)> = header
            .as_object()
            .unwrap()
            .iter()
            .filter(|(name, _)| *name != "__metadata__")
            .map(|(name, e)| {
                let offsets = &e["data_offsets"];
                let (start, end) = (offsets[0].as_u64().unwrap(), offsets[1].as_u64().unwrap());
                (name, start, end)
            })
            .collect();
        entries.sort_by_key(|&(_, start, _)| start);
        let bytes: u64 = entries.iter().map(|&(_, s, e)| e - s).sum();
        let first = entries[0].2 - entries[0].1;
        assert!(
            bytes <= SMALL_SHARD || entries.len() == 1,
            "{file}: {bytes} bytes"
        );
        if let Some((previous, _)) = previous_bytes {
            assert!(
                previous + first > SMALL_SHARD,
                "{file} could have joined the previous file"
            );
        }
        previous_bytes = Some((bytes, first));
        total += bytes;
        names_in_file_order.extend(entries.iter().map(|(name, _, _)| name.to_string()));
    }
    let mut sorted = names_in_file_order.clone();
    sorted.sort();
    assert_eq!(names_in_file_order, sorted, "tensors are not in name order");
    assert_eq!(sorted.len(), vs.variables().len());
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(WEIGHTS_INDEX_FILE)).unwrap())
            .unwrap();
    assert_eq!(index["metadata"]["total_size"], serde_json::json!(total));
    assert!(
        std::fs::read_dir(dir).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "a temporary file was left behind"
    );

    let (loaded, loaded_vs, loaded_config) = load_hf(dir, Device::Cpu).unwrap();
    assert_same_variables(&vs, &loaded_vs);
    assert_eq!(loaded_config.torch_dtype.as_deref(), Some("float32"));
    let ids = token_ids(2, 6, 97, 3);
    assert!(model.forward(&ids).equal(&loaded.forward(&ids)));
}

#[test]
fn bf16_and_fp16_shards_keep_their_dtype() {
    for (kind, name) in [(Kind::BFloat16, "bfloat16"), (Kind::Half, "float16")] {
        let (dir, _, vs) = saved_sharded(kind, SMALL_SHARD / 2);
        let dir = dir.path();
        assert!(weight_map(dir).len() == vs.variables().len());
        let config = LlamaConfig::from_file(&dir.join(CONFIG_FILE)).unwrap();
        assert_eq!(config.torch_dtype.as_deref(), Some(name));
        let checkpoint = HfCheckpoint::open(dir).unwrap();
        for tensor in checkpoint.names() {
            assert_eq!(checkpoint.kind(tensor).unwrap(), kind, "{tensor}");
        }
        let (_, loaded_vs, _) = load_hf(dir, Device::Cpu).unwrap();
        for (tensor, original) in vs.variables() {
            let loaded = &loaded_vs.variables()[&tensor];
            assert_eq!(loaded.kind(), kind, "{tensor}");
            assert!(
                loaded.equal(&original.to_kind(kind)),
                "{name} {tensor} differs"
            );
        }
    }
}

#[test]
fn single_file_when_everything_fits() {
    let (dir, _, vs) = saved_sharded(Kind::Float, 1 << 30);
    let checkpoint = HfCheckpoint::open(dir.path()).unwrap();
    assert!(!dir.path().join(WEIGHTS_INDEX_FILE).exists());
    assert_eq!(checkpoint.names().count(), vs.variables().len());
    for name in checkpoint.names() {
        assert_eq!(
            checkpoint.file(name).unwrap(),
            dir.path().join(WEIGHTS_FILE)
        );
    }
}

#[test]
fn resaving_in_another_layout_removes_the_old_weights() {
    let config = untied_config();
    let (dir, _, vs) = saved_sharded(Kind::Float, SMALL_SHARD);
    let tensors = || vs.variables().into_iter().collect();
    // Sharded -> single file: the shards and the index go.
    save_hf_sharded(dir.path(), tensors(), &config, Kind::BFloat16, u64::MAX).unwrap();
    let files = |dir: &Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(files(dir.path()), [CONFIG_FILE, WEIGHTS_FILE]);
    // Single file -> sharded: a leftover model.safetensors would shadow the index.
    std::fs::write(dir.path().join("notes.txt"), "kept").unwrap();
    save_hf_sharded(dir.path(), tensors(), &config, Kind::Float, 3 * SMALL_SHARD).unwrap();
    let names = files(dir.path());
    assert!(!names.contains(&WEIGHTS_FILE.to_string()), "{names:?}");
    assert!(names.contains(&"notes.txt".to_string()), "{names:?}");
    let (_, loaded_vs, _) = load_hf(dir.path(), Device::Cpu).unwrap();
    assert_same_variables(&vs, &loaded_vs);
}

#[test]
fn read_range_is_the_slice_of_the_full_tensor() {
    let (dir, _, vs) = saved_sharded(Kind::BFloat16, SMALL_SHARD);
    let checkpoint = HfCheckpoint::open(dir.path()).unwrap();
    let name = "model.layers.1.mlp.up_proj.weight";
    assert_eq!(checkpoint.shape(name).unwrap(), [172, 64]);
    let full = checkpoint.read(name, Kind::BFloat16, Device::Cpu).unwrap();
    assert!(full.equal(&vs.variables()[name].to_kind(Kind::BFloat16)));
    let flat = full.flatten(0, -1);
    for (start, len) in [(0, 1), (100, 1000), (172 * 64 - 37, 37), (5000, 0)] {
        let range = checkpoint
            .read_range(name, start, len, Kind::BFloat16, Device::Cpu)
            .unwrap();
        assert!(
            range.equal(&flat.narrow(0, start, len)),
            "[{start}, +{len})"
        );
        // Converted after reading: bf16 -> fp32 is exact.
        let wide = checkpoint
            .read_range(name, start, len, Kind::Float, Device::Cpu)
            .unwrap();
        assert_eq!(wide.kind(), Kind::Float);
        assert!(wide.equal(&flat.narrow(0, start, len).to_kind(Kind::Float)));
    }
    let error = format!(
        "{:#}",
        checkpoint
            .read_range(name, 172 * 64 - 10, 11, Kind::Float, Device::Cpu)
            .unwrap_err()
    );
    assert!(error.contains(name) && error.contains("model-0"), "{error}");
    let error = format!(
        "{:#}",
        checkpoint
            .read("nope", Kind::Float, Device::Cpu)
            .unwrap_err()
    );
    assert!(
        error.contains("nope") && error.contains(WEIGHTS_INDEX_FILE),
        "{error}"
    );
}

#[test]
fn truncated_shard_is_refused_naming_the_file() {
    let (dir, _, _) = saved_sharded(Kind::Float, SMALL_SHARD);
    let count = shard_files(dir.path()).len();
    let victim = shard_file_name(2, count);
    let path = dir.path().join(&victim);
    let len = std::fs::metadata(&path).unwrap().len();
    // Cut in the tensor data, then inside the header.
    for cut in [len - 4, 20] {
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(cut).unwrap();
        let error = load_error(dir.path());
        assert!(
            error.contains(&victim) && error.contains("truncated"),
            "cut to {cut}: {error}"
        );
        assert!(HfCheckpoint::open(dir.path()).is_err());
    }
}

#[test]
fn shard_missing_from_the_folder_is_named() {
    let (dir, _, _) = saved_sharded(Kind::Float, SMALL_SHARD);
    let victim = weight_map(dir.path())["model.norm.weight"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(dir.path().join(&victim)).unwrap();
    let error = load_error(dir.path());
    assert!(error.contains(&victim), "{error}");
}

/// Every file of a folder, by name, with its bytes.
fn folder_bytes(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn shallow(tensors: &[(String, Tensor)]) -> Vec<(String, Tensor)> {
    tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect()
}

#[test]
fn tensor_by_tensor_writer_is_byte_identical_to_save_hf_sharded() {
    use rpo_model::HfWriter;
    let config = untied_config();
    let (_, vs) = Llama::init(&config, Device::Cpu, Kind::Float, 5).unwrap();
    let tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    let specs: Vec<(String, Vec<i64>)> =
        tensors.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    for (kind, max) in [
        (Kind::Float, u64::MAX),
        (Kind::Float, SMALL_SHARD),
        (Kind::BFloat16, SMALL_SHARD),
        (Kind::Half, u64::MAX),
    ] {
        let before = tempfile::tempdir().unwrap();
        save_hf_sharded(before.path(), shallow(&tensors), &config, kind, max).unwrap();
        let after = tempfile::tempdir().unwrap();
        let mut writer = HfWriter::create(after.path(), &specs, &config, kind, max).unwrap();
        // In the reverse of name order: the order units arrive in must not matter.
        let mut order = shallow(&tensors);
        order.sort_by(|a, b| b.0.cmp(&a.0));
        for (name, tensor) in &order {
            writer.write(name, tensor).unwrap();
        }
        writer.finish().unwrap();
        let (a, b) = (folder_bytes(before.path()), folder_bytes(after.path()));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{kind:?} {max}"
        );
        for (name, bytes) in &a {
            assert!(bytes == &b[name], "{name} differs ({kind:?}, max {max})");
        }
    }
}

#[test]
fn tensor_by_tensor_writer_refuses_a_missing_or_misshapen_tensor() {
    use rpo_model::HfWriter;
    let config = untied_config();
    let (_, vs) = Llama::init(&config, Device::Cpu, Kind::Float, 5).unwrap();
    let tensors: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    let specs: Vec<(String, Vec<i64>)> =
        tensors.iter().map(|(n, t)| (n.clone(), t.size())).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut writer = HfWriter::create(dir.path(), &specs, &config, Kind::Float, u64::MAX).unwrap();
    let err = writer
        .write(
            "model.norm.weight",
            &Tensor::zeros([3], (Kind::Float, Device::Cpu)),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("model.norm.weight has shape [3]"), "{err}");
    for (name, tensor) in tensors.iter().filter(|(n, _)| n != "model.norm.weight") {
        writer.write(name, tensor).unwrap();
    }
    let err = writer.finish().unwrap_err().to_string();
    assert!(
        err.contains("never written") && err.contains("model.norm.weight"),
        "{err}"
    );
    // Nothing half-written is left where a loader would look.
    assert!(!dir.path().join(WEIGHTS_FILE).exists());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from(CONFIG_FILE)]);
}
