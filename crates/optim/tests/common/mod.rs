//! Exchange with a Python peer through safetensors files, and tolerant comparison.

use std::collections::HashMap;

use serde_json::Value;
use tch::Tensor;

/// Writes `inputs` and `spec`, runs `tests/peers/<script> spec inputs outputs`, and
/// returns the tensors the peer wrote.
pub fn run_peer(
    script: &str,
    spec: &Value,
    inputs: &[(String, Tensor)],
) -> HashMap<String, Tensor> {
    let dir = tempfile::tempdir().expect("tempdir for the peer exchange");
    let spec_path = dir.path().join("spec.json");
    let in_path = dir.path().join("inputs.safetensors");
    let out_path = dir.path().join("outputs.safetensors");
    std::fs::write(&spec_path, spec.to_string()).expect("writing the peer spec");
    Tensor::write_safetensors(inputs, &in_path).expect("writing the peer inputs");
    let paths = [&spec_path, &in_path, &out_path].map(|p| p.to_str().unwrap().to_owned());
    rpo_peer::run(script, &paths.each_ref().map(String::as_str));
    Tensor::read_safetensors(&out_path)
        .unwrap_or_else(|e| panic!("peer {script} wrote no readable outputs: {e}"))
        .into_iter()
        .collect()
}

/// Elementwise `|got − want| ≤ rtol·|want| + atol` on equal shapes, in fp64.
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor, rtol: f64, atol: f64) {
    assert_eq!(got.size(), want.size(), "{what}: shape differs");
    let got = Vec::<f64>::try_from(got.to_kind(tch::Kind::Double).flatten(0, -1)).unwrap();
    let want = Vec::<f64>::try_from(want.to_kind(tch::Kind::Double).flatten(0, -1)).unwrap();
    for (k, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= rtol * w.abs() + atol,
            "{what}[{k}]: rust {g:e} vs peer {w:e} (|Δ| = {:e})\nrust: {got:?}\npeer: {want:?}",
            (g - w).abs()
        );
    }
}
