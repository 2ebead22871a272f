//! Tensor exchange with a Python peer through safetensors files, and tolerant comparison.
//!
//! A peer test sends every case to its peer in one run (one Python start-up): case `c`'s
//! input `k` travels as `c/k`, and the peer answers with `c/<output>` tensors.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde_json::Value;
use tch::Tensor;

/// Writes `inputs` and `spec`, runs `tests/peers/<script> spec inputs outputs`, and
/// returns the tensors the peer wrote.
pub fn exchange(
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
    crate::run(script, &paths.each_ref().map(String::as_str));
    Tensor::read_safetensors(&out_path)
        .unwrap_or_else(|e| panic!("peer {script} wrote no readable outputs: {e}"))
        .into_iter()
        .collect()
}

/// Elementwise `|got − want| ≤ rtol·|want| + atol` on equal shapes, in fp64.
#[track_caller]
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

/// Every case's inputs (`<case>/<input>`) and the peer's outputs for them
/// (`<case>/<output>`), from one peer run.
pub struct CaseTensors {
    pub inputs: HashMap<String, Tensor>,
    pub outputs: HashMap<String, Tensor>,
}

impl CaseTensors {
    /// Seeds torch with `seed`, generates each case's inputs in the order of `cases`
    /// (so reordering the cases changes the random inputs), and runs `script` once on
    /// all of them, with `cases` as its spec.
    pub fn compute<K: Display>(
        script: &str,
        seed: i64,
        cases: &[Value],
        generate: impl Fn(&Value) -> Vec<(K, Tensor)>,
    ) -> Self {
        tch::manual_seed(seed);
        let mut inputs = Vec::new();
        for case in cases {
            let name = case["name"].as_str().expect("every case has a string name");
            for (key, tensor) in generate(case) {
                inputs.push((format!("{name}/{key}"), tensor));
            }
        }
        let outputs = exchange(script, &Value::from(cases), &inputs);
        Self {
            inputs: inputs.into_iter().collect(),
            outputs,
        }
    }

    /// A copy of case `case`'s input `key`.
    #[track_caller]
    pub fn input(&self, case: &str, key: &str) -> Tensor {
        self.inputs[&format!("{case}/{key}")].copy()
    }

    /// The peer's output `key` of case `case`; panics if the peer wrote none.
    #[track_caller]
    pub fn output(&self, case: &str, key: &str) -> &Tensor {
        match self.outputs.get(&format!("{case}/{key}")) {
            Some(tensor) => tensor,
            None => panic!("peer wrote no {case}/{key}"),
        }
    }
}

/// The value in `cell`, computed by `init` on first use: one peer run per test binary,
/// however many tests read it. The lock serialises the tests that read it (tensors are
/// not `Sync`); a test that panicked while holding it does not poison it for the rest.
pub fn computed_once(
    cell: &'static OnceLock<Mutex<CaseTensors>>,
    init: impl FnOnce() -> CaseTensors,
) -> MutexGuard<'static, CaseTensors> {
    cell.get_or_init(|| Mutex::new(init()))
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
