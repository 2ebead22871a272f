//! The kinds of [`EmbedError`]: a missing model folder, a pooling config in the wrong
//! form, and rows that do not fit an embedding cache.

use rpo_embed::cache::write_cache;
use rpo_embed::{
    CacheDtype, CacheHeader, CacheModel, CacheWriter, EmbedError, EmbeddingCache, Pooling,
    SentenceEncoder,
};
use tch::{Device, Kind, Tensor};

#[test]
fn a_missing_or_malformed_model_folder_is_a_folder_or_json_error() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent");
    let err = SentenceEncoder::load(&absent, Device::Cpu).unwrap_err();
    assert!(matches!(err, EmbedError::Folder(_)), "{err:?}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    std::fs::write(dir.path().join("modules.json"), "not json").unwrap();
    let err = SentenceEncoder::load(dir.path(), Device::Cpu).unwrap_err();
    match &err {
        EmbedError::Json { path, .. } => assert!(path.ends_with("modules.json"), "{err}"),
        other => panic!("expected Json, got {other:?}"),
    }
    assert!(err.to_string().starts_with("invalid "), "{err}");

    let pooling = dir.path().join("pooling.json");
    std::fs::write(&pooling, r#"{"pooling_mode": "lasttoken"}"#).unwrap();
    let err = Pooling::from_file(&pooling).unwrap_err();
    assert!(matches!(err, EmbedError::Config(_)), "{err:?}");
    assert!(
        err.to_string().contains("pooling.json") && err.to_string().contains("lasttoken"),
        "{err}"
    );
}

#[test]
fn rows_that_do_not_fit_the_cache_are_cache_errors() {
    let dir = tempfile::tempdir().unwrap();
    let model = CacheModel {
        model: "test".into(),
        model_path: None,
        model_fingerprint: "0123456789abcdef".into(),
        text_mode: "prompt".into(),
        dim: 3,
        dtype: CacheDtype::F32,
    };
    let err = CacheHeader::new(model.clone(), &["a", "a"]).unwrap_err();
    assert!(matches!(err, EmbedError::Cache(_)), "{err:?}");
    assert!(err.to_string().contains("same fingerprint"), "{err}");

    let header = CacheHeader::new(model.clone(), &["a", "b"]).unwrap();
    let mut w = CacheWriter::create(&dir.path().join("e.bin"), header).unwrap();
    let err = w
        .append(&Tensor::zeros([2, 4], (Kind::Float, Device::Cpu)))
        .unwrap_err();
    assert!(matches!(err, EmbedError::Cache(_)), "{err:?}");
    assert!(err.to_string().contains("dim 3"), "{err}");

    let path = dir.path().join("ok.bin");
    let rows = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
    write_cache(&path, model, &["a", "b"], &rows).unwrap();
    let cache = EmbeddingCache::open(&path).unwrap();
    let err = cache.lookup(&["c"]).unwrap_err();
    assert!(matches!(err, EmbedError::Cache(_)), "{err:?}");
    assert!(
        err.to_string().contains("no row for the text \"c\""),
        "{err}"
    );

    let err = "f16".parse::<CacheDtype>().unwrap_err();
    assert!(matches!(err, EmbedError::Invalid(_)), "{err:?}");
}
