//! Every loss and weighting variant against an independent PyTorch implementation
//! (tests/peers/losses_peer.py, written from the paper's and TRL/HALOs' formulas).
//!
//! All cases go to the peer in one run (one Python start-up); each test then computes
//! its case here in fp64 and compares the value and the input gradients.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};

use rpo_losses::{dpo_loss, ipo_loss, kto_loss, rpo_loss, sequence_logps, sft_loss, Weighting};
use rpo_peer::tensors::{assert_close, computed_once, CaseTensors};
use serde_json::{json, Value};
use tch::{Kind, Tensor};

const RTOL: f64 = 1e-6;
const ATOL: f64 = 1e-12;
const F64: (Kind, tch::Device) = (Kind::Double, tch::Device::Cpu);

fn rpo_case(name: &str, weighting: Value, m: i64, n: i64, beta: f64) -> Value {
    json!({"name": name, "loss": "rpo", "weighting": weighting, "m": m, "n": n, "beta": beta,
           "grad_wrt": ["policy_chosen", "policy_rejected"]})
}

fn pair_case(name: &str, loss: &str, b: i64, beta: f64) -> Value {
    json!({"name": name, "loss": loss, "m": b, "n": b, "beta": beta,
           "grad_wrt": ["policy_chosen", "policy_rejected"]})
}

fn kto_case(name: &str, kl_shift: f64) -> Value {
    json!({"name": name, "loss": "kto", "n": 7, "beta": 0.3, "kl_shift": kl_shift,
           "desirable_weight": 1.0, "undesirable_weight": 1.33,
           "grad_wrt": ["policy", "policy_kl"]})
}

/// The cases, in generation order (changing the order changes the random inputs).
fn cases() -> Vec<Value> {
    let embedding = |tau| json!({"kind": "embedding", "tau": tau});
    let plain = |kind| json!({"kind": kind});
    let diagonal = |kind, alpha| json!({"kind": kind, "alpha": alpha});
    vec![
        rpo_case("rpo_embedding_paired", embedding(0.5), 4, 4, 0.1),
        rpo_case("rpo_embedding_unpaired", embedding(0.75), 3, 5, 0.5),
        rpo_case(
            "rpo_uniform_paper_paired",
            plain("uniform_paper"),
            4,
            4,
            0.5,
        ),
        rpo_case(
            "rpo_uniform_paper_unpaired",
            plain("uniform_paper"),
            5,
            3,
            0.5,
        ),
        rpo_case("rpo_uniform_code_paired", plain("uniform_code"), 4, 4, 0.1),
        rpo_case(
            "rpo_uniform_code_unpaired",
            plain("uniform_code"),
            2,
            6,
            0.2,
        ),
        rpo_case(
            "rpo_diagonal_paper",
            diagonal("diagonal_paper", 0.8),
            5,
            5,
            0.3,
        ),
        rpo_case(
            "rpo_diagonal_code",
            diagonal("diagonal_code", 0.8),
            5,
            5,
            0.3,
        ),
        pair_case("dpo", "dpo", 6, 0.1),
        pair_case("ipo", "ipo", 6, 0.1),
        kto_case("kto", 8.0),
        kto_case("kto_kl_clamped", -8.0),
        json!({"name": "sft", "loss": "sft", "n": 5, "grad_wrt": ["chosen_logps"]}),
        json!({"name": "sequence_logps", "loss": "sequence_logps", "b": 3, "t": 6, "v": 11,
               "grad_wrt": ["logits"]}),
    ]
}

/// Summed sequence log-probabilities of plausible size: reference and a nearby policy.
fn logps_pair(n: i64) -> (Tensor, Tensor) {
    let reference = Tensor::rand([n], F64) * -120.0 - 10.0;
    let policy = &reference + Tensor::randn([n], F64) * 4.0;
    (policy, reference)
}

/// Random prompt embeddings; unit rows when `unit`, else rows of arbitrary length.
fn embeddings(n: i64, unit: bool) -> Tensor {
    let e = Tensor::randn([n, 8], F64);
    let norms = e.norm_scalaropt_dim(2, [1i64].as_slice(), true);
    let lengths = if unit {
        Tensor::ones([n, 1], F64)
    } else {
        Tensor::rand([n, 1], F64) * 3.0 + 0.2
    };
    e / norms * lengths
}

fn generate(case: &Value) -> Vec<(&'static str, Tensor)> {
    let int = |key: &str| case[key].as_i64().unwrap();
    match case["loss"].as_str().unwrap() {
        "rpo" | "dpo" | "ipo" => {
            let (m, n) = (int("m"), int("n"));
            let (pc, rc) = logps_pair(m);
            let (pr, rr) = logps_pair(n);
            // Paired data shares its prompts; unpaired prompts differ and need not be unit.
            let (win_emb, lose_emb) = if m == n {
                let e = embeddings(m, true);
                (e.copy(), e)
            } else {
                (embeddings(m, false), embeddings(n, false))
            };
            vec![
                ("policy_chosen", pc),
                ("reference_chosen", rc),
                ("policy_rejected", pr),
                ("reference_rejected", rr),
                ("win_emb", win_emb),
                ("lose_emb", lose_emb),
            ]
        }
        "kto" => {
            let n = int("n");
            let (p, r) = logps_pair(n);
            let (pk, rk) = logps_pair(n);
            let pk = pk + case["kl_shift"].as_f64().unwrap();
            let desirable = Tensor::from_slice(&[true, false, true, true, false, false, true]);
            vec![
                ("policy", p),
                ("reference", r),
                ("desirable", desirable),
                ("policy_kl", pk),
                ("reference_kl", rk),
            ]
        }
        "sft" => vec![("chosen_logps", logps_pair(int("n")).0)],
        "sequence_logps" => {
            let (b, t, v) = (int("b"), int("t"), int("v"));
            let logits = Tensor::randn([b, t, v], F64) * 3.0;
            let mask = Tensor::rand([b, t], F64).gt(0.35).to_kind(Kind::Double);
            // Ignored positions hold -100 or an arbitrary id: neither may count.
            let labels = Tensor::randint(v, [b, t], (Kind::Int64, tch::Device::Cpu));
            let labels =
                labels.masked_fill(&mask.eq(0).logical_and(&labels.remainder(2).eq(0)), -100);
            let upstream = Tensor::randn([b], F64);
            vec![
                ("logits", logits),
                ("labels", labels),
                ("loss_mask", mask),
                ("upstream", upstream),
            ]
        }
        other => panic!("unknown loss {other}"),
    }
}

fn weighting(spec: &Value) -> Weighting {
    let alpha = || spec["alpha"].as_f64().unwrap();
    match spec["kind"].as_str().unwrap() {
        "embedding" => Weighting::Embedding {
            tau: spec["tau"].as_f64().unwrap(),
        },
        "uniform_paper" => Weighting::UniformPaper,
        "uniform_code" => Weighting::UniformCode,
        "diagonal_paper" => Weighting::DiagonalPaper { alpha: alpha() },
        "diagonal_code" => Weighting::DiagonalCode { alpha: alpha() },
        other => panic!("unknown weighting {other}"),
    }
}

/// The case's output computed with rpo-losses.
fn rust_value(case: &Value, t: &HashMap<&str, Tensor>) -> Tensor {
    let beta = || case["beta"].as_f64().unwrap();
    let logratio = |p: &str, r: &str| &t[p] - &t[r];
    match case["loss"].as_str().unwrap() {
        "rpo" => {
            let w = weighting(&case["weighting"]);
            let emb = |k: &str| w.uses_embeddings().then(|| &t[k]);
            let a = logratio("policy_chosen", "reference_chosen");
            let b = logratio("policy_rejected", "reference_rejected");
            rpo_loss(&a, &b, emb("win_emb"), emb("lose_emb"), &w, beta()).unwrap()
        }
        "dpo" | "ipo" => {
            let a = logratio("policy_chosen", "reference_chosen");
            let b = logratio("policy_rejected", "reference_rejected");
            let loss = if case["loss"] == "dpo" {
                dpo_loss
            } else {
                ipo_loss
            };
            loss(&a, &b, beta()).unwrap()
        }
        "kto" => kto_loss(
            &logratio("policy", "reference"),
            &t["desirable"],
            &logratio("policy_kl", "reference_kl"),
            beta(),
            case["desirable_weight"].as_f64().unwrap(),
            case["undesirable_weight"].as_f64().unwrap(),
        )
        .unwrap(),
        "sft" => sft_loss(&t["chosen_logps"]).unwrap(),
        "sequence_logps" => sequence_logps(&t["logits"], &t["labels"], &t["loss_mask"]).unwrap(),
        other => panic!("unknown loss {other}"),
    }
}

/// Inputs of every case and the peer's results, computed once per test binary.
fn fixture() -> MutexGuard<'static, CaseTensors> {
    static FIXTURE: OnceLock<Mutex<CaseTensors>> = OnceLock::new();
    computed_once(&FIXTURE, || {
        CaseTensors::compute("losses_peer.py", 20240611, &cases(), generate)
    })
}

fn check(name: &str) {
    let case = cases().into_iter().find(|c| c["name"] == name).unwrap();
    let grad_wrt: Vec<&str> = case["grad_wrt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    let fx = fixture();
    let prefix = format!("{name}/");
    let inputs: HashMap<&str, Tensor> = fx
        .inputs
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|key| (key, v.copy())))
        .map(|(key, v)| {
            let leaf = if grad_wrt.contains(&key) {
                v.set_requires_grad(true)
            } else {
                v
            };
            (key, leaf)
        })
        .collect();
    let value = rust_value(&case, &inputs);
    let want = |key: &str| fx.output(name, key);
    assert_close_case(&format!("{name} value"), &value, want("value"));
    let scalar = match inputs.get("upstream") {
        Some(u) => (&value * u).sum(Kind::Double),
        None => value,
    };
    scalar.backward();
    for key in grad_wrt {
        // No gradient reached the input (e.g. KTO's detached KL): it is zero.
        let grad = inputs[key].grad();
        let got = if grad.defined() {
            grad
        } else {
            inputs[key].zeros_like()
        };
        assert_close_case(
            &format!("{name} ∂/∂{key}"),
            &got,
            want(&format!("grad/{key}")),
        );
    }
}

fn assert_close_case(what: &str, got: &Tensor, want: &Tensor) {
    assert_close(what, got, want, RTOL, ATOL);
}

#[test]
fn rpo_embedding_paired() {
    check("rpo_embedding_paired");
}

#[test]
fn rpo_embedding_unpaired() {
    check("rpo_embedding_unpaired");
}

#[test]
fn rpo_uniform_paper_paired() {
    check("rpo_uniform_paper_paired");
}

#[test]
fn rpo_uniform_paper_unpaired() {
    check("rpo_uniform_paper_unpaired");
}

#[test]
fn rpo_uniform_code_paired() {
    check("rpo_uniform_code_paired");
}

#[test]
fn rpo_uniform_code_unpaired() {
    check("rpo_uniform_code_unpaired");
}

#[test]
fn rpo_diagonal_paper() {
    check("rpo_diagonal_paper");
}

#[test]
fn rpo_diagonal_code() {
    check("rpo_diagonal_code");
}

#[test]
fn dpo() {
    check("dpo");
}

#[test]
fn ipo() {
    check("ipo");
}

/// Mean log-ratio of a KTO case's mismatched pairs (before clamping).
fn raw_kl(name: &str) -> f64 {
    let fx = fixture();
    (fx.input(name, "policy_kl") - fx.input(name, "reference_kl"))
        .mean(None)
        .double_value(&[])
}

#[test]
fn kto() {
    assert!(raw_kl("kto") > 0.0, "this case must exercise a positive KL");
    check("kto");
}

#[test]
fn kto_kl_clamped() {
    assert!(
        raw_kl("kto_kl_clamped") < 0.0,
        "this case must exercise the clamp"
    );
    check("kto_kl_clamped");
}

#[test]
fn sft() {
    check("sft");
}

#[test]
fn sequence_logps_matches_cross_entropy() {
    check("sequence_logps");
}

/// Every case has a test above (a case added to `cases()` without one would go unchecked).
#[test]
fn every_case_is_tested() {
    let source = include_str!("peer_losses.rs");
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        assert!(
            source.contains(&format!("check(\"{name}\")")),
            "case {name} has no test"
        );
    }
}
