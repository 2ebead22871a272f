//! RMSprop, AdamW, the warmup schedule and gradient clipping against torch
//! (tests/peers/optim_peer.py drives torch.optim, LambdaLR and clip_grad_norm_).
//!
//! All cases go to the peer in one run; each test replays its case here in fp64.

use std::sync::{Mutex, MutexGuard, OnceLock};

use rpo_optim::{
    clip_grad_norm, AdamW, AdamWConfig, Optimizer, RmsProp, RmsPropConfig, WarmupConstant,
};
use rpo_peer::tensors::{assert_close, computed_once, CaseTensors};
use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};

const RTOL: f64 = 1e-6;
const ATOL: f64 = 1e-12;
const F64: (Kind, Device) = (Kind::Double, Device::Cpu);
const SHAPES: [&[i64]; 3] = [&[4, 3], &[5], &[2, 2, 2]];
const STEPS: i64 = 20;

/// The cases, in generation order (changing the order changes the random inputs).
/// `config` holds torch keyword arguments; absent ones take both sides' defaults.
fn cases() -> Vec<Value> {
    let opt = |name: &str, kind: &str, config: Value| json!({"name": name, "kind": kind, "config": config, "steps": STEPS, "params": SHAPES.len()});
    vec![
        opt("rmsprop_default", "rmsprop", json!({})),
        opt(
            "rmsprop_weight_decay",
            "rmsprop",
            json!({"weight_decay": 0.1}),
        ),
        opt("rmsprop_momentum", "rmsprop", json!({"momentum": 0.9})),
        opt(
            "rmsprop_centered",
            "rmsprop",
            json!({"centered": true, "momentum": 0.5, "weight_decay": 0.01, "alpha": 0.9, "eps": 1e-6}),
        ),
        opt("adamw_default", "adamw", json!({})),
        opt(
            "adamw_custom",
            "adamw",
            json!({"betas": [0.8, 0.95], "eps": 1e-6, "weight_decay": 0.1}),
        ),
        json!({"name": "schedule_warmup", "kind": "schedule", "base_lr": 5e-7, "warmup_steps": 10, "steps": 30}),
        json!({"name": "schedule_no_warmup", "kind": "schedule", "base_lr": 1e-3, "warmup_steps": 0, "steps": 5}),
        json!({"name": "clip_active", "kind": "clip", "max_norm": 1.0, "params": SHAPES.len()}),
        json!({"name": "clip_inactive", "kind": "clip", "max_norm": 1e3, "params": SHAPES.len()}),
    ]
}

fn generate(case: &Value) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    match case["kind"].as_str().unwrap() {
        "rmsprop" | "adamw" => {
            for (i, shape) in SHAPES.iter().enumerate() {
                out.push((format!("param/{i}"), Tensor::randn(*shape, F64)));
            }
            for s in 0..STEPS {
                for (i, shape) in SHAPES.iter().enumerate() {
                    // Gradients of varying scale, so the second-moment average matters.
                    let scale = 10f64.powf((s % 5) as f64 - 2.0);
                    out.push((format!("grad/{s}/{i}"), Tensor::randn(*shape, F64) * scale));
                }
            }
            // A warmup ramp: the learning rate changes every step.
            let lrs: Vec<f64> = (0..STEPS)
                .map(|s| 1e-2 * ((s + 1) as f64 / 8.0).min(1.0))
                .collect();
            out.push(("lrs".to_owned(), Tensor::from_slice(&lrs)));
        }
        "clip" => {
            for (i, shape) in SHAPES.iter().enumerate() {
                out.push((format!("grad/{i}"), Tensor::randn(*shape, F64)));
            }
        }
        "schedule" => {}
        other => panic!("unknown case kind {other}"),
    }
    out
}

fn rmsprop_config(c: &Value) -> RmsPropConfig {
    let d = RmsPropConfig::default();
    RmsPropConfig {
        alpha: c["alpha"].as_f64().unwrap_or(d.alpha),
        eps: c["eps"].as_f64().unwrap_or(d.eps),
        weight_decay: c["weight_decay"].as_f64().unwrap_or(d.weight_decay),
        momentum: c["momentum"].as_f64().unwrap_or(d.momentum),
        centered: c["centered"].as_bool().unwrap_or(d.centered),
    }
}

fn adamw_config(c: &Value) -> AdamWConfig {
    let d = AdamWConfig::default();
    AdamWConfig {
        beta1: c["betas"][0].as_f64().unwrap_or(d.beta1),
        beta2: c["betas"][1].as_f64().unwrap_or(d.beta2),
        eps: c["eps"].as_f64().unwrap_or(d.eps),
        weight_decay: c["weight_decay"].as_f64().unwrap_or(d.weight_decay),
    }
}

/// Inputs of every case and the peer's results, computed once per test binary.
fn fixture() -> MutexGuard<'static, CaseTensors> {
    static FIXTURE: OnceLock<Mutex<CaseTensors>> = OnceLock::new();
    computed_once(&FIXTURE, || {
        CaseTensors::compute("optim_peer.py", 20240612, &cases(), generate)
    })
}

fn case(name: &str) -> Value {
    cases().into_iter().find(|c| c["name"] == name).unwrap()
}

/// Runs the case's 20 steps with `opt` and compares final parameters and state with torch.
fn check_optimizer(name: &str, mut opt: impl Optimizer) {
    let fx = fixture();
    let mut params: Vec<Tensor> = (0..SHAPES.len())
        .map(|i| fx.input(name, &format!("param/{i}")))
        .collect();
    let lrs = Vec::<f64>::try_from(fx.input(name, "lrs")).unwrap();
    for (s, lr) in lrs.iter().enumerate() {
        let grads: Vec<Tensor> = (0..SHAPES.len())
            .map(|i| fx.input(name, &format!("grad/{s}/{i}")))
            .collect();
        opt.step(&mut params, &grads, *lr).unwrap();
    }
    for (i, p) in params.iter().enumerate() {
        assert_close(
            &format!("{name} param {i}"),
            p,
            fx.output(name, &format!("param/{i}")),
            RTOL,
            ATOL,
        );
    }
    let state = opt.state_tensors();
    let peer_state: Vec<&String> = fx
        .outputs
        .keys()
        .filter(|k| k.starts_with(&format!("{name}/state/")))
        .collect();
    assert_eq!(
        state.len(),
        peer_state.len(),
        "{name}: state entries {:?} vs peer {peer_state:?}",
        state.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    for (key, tensor) in &state {
        assert_close(
            &format!("{name} state {key}"),
            tensor,
            fx.output(name, &format!("state/{key}")),
            RTOL,
            ATOL,
        );
    }
    assert_eq!(opt.steps(), STEPS);
}

#[test]
fn rmsprop_default_matches_torch() {
    let c = case("rmsprop_default");
    assert_eq!(rmsprop_config(&c["config"]), RmsPropConfig::default());
    check_optimizer(
        "rmsprop_default",
        RmsProp::new(rmsprop_config(&c["config"])),
    );
}

#[test]
fn rmsprop_weight_decay_matches_torch() {
    let c = case("rmsprop_weight_decay");
    check_optimizer(
        "rmsprop_weight_decay",
        RmsProp::new(rmsprop_config(&c["config"])),
    );
}

#[test]
fn rmsprop_momentum_matches_torch() {
    let c = case("rmsprop_momentum");
    check_optimizer(
        "rmsprop_momentum",
        RmsProp::new(rmsprop_config(&c["config"])),
    );
}

#[test]
fn rmsprop_centered_matches_torch() {
    let c = case("rmsprop_centered");
    check_optimizer(
        "rmsprop_centered",
        RmsProp::new(rmsprop_config(&c["config"])),
    );
}

#[test]
fn adamw_default_matches_torch() {
    let c = case("adamw_default");
    assert_eq!(adamw_config(&c["config"]), AdamWConfig::default());
    check_optimizer("adamw_default", AdamW::new(adamw_config(&c["config"])));
}

#[test]
fn adamw_custom_matches_torch() {
    let c = case("adamw_custom");
    check_optimizer("adamw_custom", AdamW::new(adamw_config(&c["config"])));
}

fn check_schedule(name: &str) {
    let c = case(name);
    let schedule = WarmupConstant {
        base_lr: c["base_lr"].as_f64().unwrap(),
        warmup_steps: c["warmup_steps"].as_u64().unwrap(),
    };
    let steps = c["steps"].as_u64().unwrap();
    let ours: Vec<f64> = (0..steps).map(|s| schedule.lr(s)).collect();
    let fx = fixture();
    assert_close(
        name,
        &Tensor::from_slice(&ours),
        fx.output(name, "lrs"),
        1e-12,
        0.0,
    );
}

#[test]
fn schedule_warmup_matches_lambda_lr() {
    check_schedule("schedule_warmup");
}

#[test]
fn schedule_without_warmup_is_constant_like_lambda_lr() {
    check_schedule("schedule_no_warmup");
}

fn check_clip(name: &str) {
    let c = case(name);
    let fx = fixture();
    let mut grads: Vec<Tensor> = (0..SHAPES.len())
        .map(|i| fx.input(name, &format!("grad/{i}")))
        .collect();
    let norm = clip_grad_norm(&mut grads, c["max_norm"].as_f64().unwrap());
    assert_close(
        &format!("{name} norm"),
        &Tensor::from(norm),
        fx.output(name, "total_norm"),
        RTOL,
        ATOL,
    );
    for (i, g) in grads.iter().enumerate() {
        assert_close(
            &format!("{name} grad {i}"),
            g,
            fx.output(name, &format!("grad/{i}")),
            RTOL,
            ATOL,
        );
    }
}

#[test]
fn clip_grad_norm_scales_like_torch() {
    check_clip("clip_active");
}

#[test]
fn clip_grad_norm_leaves_small_gradients_like_torch() {
    check_clip("clip_inactive");
}
