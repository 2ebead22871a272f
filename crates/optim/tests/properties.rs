//! Rust-only properties: checkpoint round trip, mixed precision, errors, clipping seams.

use rpo_optim::{
    clip_coefficient, clip_grad_norm, grad_sq_norm, grad_sq_norm_tensor, scale_grads, AdamW,
    AdamWConfig, Optimizer, RmsProp, RmsPropConfig, WarmupConstant,
};
use tch::{Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

fn params() -> Vec<Tensor> {
    vec![Tensor::randn([3, 2], F64), Tensor::randn([4], F64)]
}

/// Deterministic gradients (tests share the global RNG across threads).
fn grads_at(step: i64) -> Vec<Tensor> {
    let wave = |n: i64, phase: f64| (Tensor::arange(n, F64) * (step + 1) as f64 + phase).sin();
    vec![wave(6, 0.3).reshape([3, 2]), wave(4, 1.1) * 10.0]
}

fn run(opt: &mut dyn Optimizer, params: &mut [Tensor], steps: std::ops::Range<i64>) {
    for s in steps {
        opt.step(params, &grads_at(s), 1e-2).unwrap();
    }
}

fn resumes_exactly(make: impl Fn() -> Box<dyn Optimizer>) {
    tch::manual_seed(1);
    let start = params();
    let mut straight: Vec<Tensor> = start.iter().map(Tensor::copy).collect();
    let mut opt = make();
    run(&mut *opt, &mut straight, 0..8);

    let mut resumed: Vec<Tensor> = start.iter().map(Tensor::copy).collect();
    let mut first = make();
    run(&mut *first, &mut resumed, 0..4);
    let saved: Vec<(String, Tensor)> = first
        .state_tensors()
        .into_iter()
        .map(|(k, t)| (k, t.copy()))
        .collect();
    let mut second = make();
    second.load_state_tensors(&saved).unwrap();
    assert_eq!(second.steps(), 4);
    run(&mut *second, &mut resumed, 4..8);
    for (a, b) in straight.iter().zip(&resumed) {
        assert!(a.equal(b), "resumed run diverged");
    }
}

#[test]
fn rmsprop_resumes_exactly_from_its_state() {
    let config = RmsPropConfig {
        momentum: 0.9,
        centered: true,
        ..Default::default()
    };
    resumes_exactly(|| Box::new(RmsProp::new(config)));
}

#[test]
fn adamw_resumes_exactly_from_its_state() {
    resumes_exactly(|| Box::new(AdamW::new(AdamWConfig::default())));
}

#[test]
fn state_names_follow_torch() {
    let mut opt = RmsProp::new(RmsPropConfig::default());
    assert!(opt.state_tensors().is_empty());
    let mut p = params();
    opt.step(&mut p, &grads_at(0), 1e-3).unwrap();
    let names: Vec<String> = opt.state_tensors().into_iter().map(|(k, _)| k).collect();
    assert_eq!(names, ["step", "square_avg.0", "square_avg.1"]);
}

#[test]
fn loading_incomplete_state_is_an_error() {
    let mut opt = AdamW::new(AdamWConfig::default());
    let partial = vec![
        ("step".to_owned(), Tensor::from(3i64)),
        ("exp_avg.0".to_owned(), Tensor::zeros([4], F64)),
    ];
    let err = opt.load_state_tensors(&partial).unwrap_err();
    assert!(err.to_string().contains("exp_avg_sq.0"), "{err}");
}

#[test]
fn bf16_gradients_update_fp32_master_weights() {
    let mut p = vec![Tensor::ones([8], (Kind::Float, Device::Cpu))];
    let g = vec![Tensor::full([8], 0.5, (Kind::BFloat16, Device::Cpu))];
    let mut opt = RmsProp::new(RmsPropConfig::default());
    opt.step(&mut p, &g, 1e-3).unwrap();
    assert_eq!(p[0].kind(), Kind::Float);
    // First RMSprop step: g / (sqrt(0.01 g²) + eps) = 10 (up to eps) for any g.
    let want = 1.0 - 1e-3 * 0.5 / (0.01f64 * 0.25).sqrt();
    assert!((p[0].double_value(&[0]) - want).abs() < 1e-6);
    assert!(opt
        .state_tensors()
        .iter()
        .all(|(k, t)| k == "step" || t.kind() == Kind::Float));
}

#[test]
fn mismatched_steps_are_errors() {
    let mut opt = AdamW::new(AdamWConfig::default());
    let mut p = params();
    assert!(opt.step(&mut p, &grads_at(0)[..1], 1e-3).is_err());
    let wrong_shape = vec![Tensor::zeros([2, 3], F64), Tensor::zeros([4], F64)];
    assert!(opt.step(&mut p, &wrong_shape, 1e-3).is_err());
    opt.step(&mut p, &grads_at(0), 1e-3).unwrap();
    let mut fewer = vec![p[0].shallow_clone()];
    assert!(opt.step(&mut fewer, &grads_at(1)[..1], 1e-3).is_err());
}

#[test]
fn parameters_that_require_grad_are_updated_in_place() {
    let leaf = Tensor::zeros([3], F64).set_requires_grad(true);
    let mut p = vec![leaf.shallow_clone()];
    let g = vec![Tensor::ones([3], F64)];
    AdamW::new(AdamWConfig::default())
        .step(&mut p, &g, 0.1)
        .unwrap();
    assert!((leaf.double_value(&[0]) + 0.1).abs() < 1e-6, "{leaf}");
}

#[test]
fn sharded_squared_norms_add_up_to_the_global_norm() {
    tch::manual_seed(2);
    let flat = Tensor::randn([10], F64);
    let whole = grad_sq_norm(&[flat.shallow_clone()]);
    let shards = grad_sq_norm(&[flat.narrow(0, 0, 4)]) + grad_sq_norm(&[flat.narrow(0, 4, 6)]);
    assert!((whole - shards).abs() < 1e-12);
    let mut split = vec![flat.narrow(0, 0, 4).copy(), flat.narrow(0, 4, 6).copy()];
    scale_grads(&mut split, clip_coefficient(shards.sqrt(), 0.5));
    let mut joined = vec![flat.copy()];
    clip_grad_norm(&mut joined, 0.5);
    assert!(Tensor::cat(&split, 0).allclose(&joined[0], 1e-12, 1e-12, false));
}

#[test]
fn clip_coefficient_is_capped_and_ignores_non_finite_norms() {
    assert_eq!(clip_coefficient(0.5, 10.0), 1.0);
    assert!((clip_coefficient(20.0, 10.0) - 10.0 / (20.0 + 1e-6)).abs() < 1e-15);
    assert_eq!(clip_coefficient(f64::NAN, 10.0), 1.0);
    assert_eq!(clip_coefficient(f64::INFINITY, 10.0), 1.0);
}

#[test]
fn warmup_reaches_the_base_rate_at_step_warmup() {
    let s = WarmupConstant {
        base_lr: 5e-7,
        warmup_steps: 150,
    };
    assert_eq!(s.lr(0), 5e-7 / 151.0);
    assert!(s.lr(149) < 5e-7);
    assert_eq!(s.lr(150), 5e-7);
    assert_eq!(s.lr(10_000), 5e-7);
}

#[test]
fn the_squared_norm_on_the_device_equals_the_host_sum_bit_for_bit() {
    // The trainer reads the device sum once per step; it must be the host sum exactly
    // (f32, bf16 and f64 gradients, summed in order in f64).
    tch::manual_seed(3);
    let grads = vec![
        Tensor::randn([1000], (Kind::Float, Device::Cpu)),
        Tensor::randn([37], (Kind::Float, Device::Cpu)).to_kind(Kind::BFloat16),
        Tensor::randn([5, 7], F64) * 1e3,
        Tensor::zeros([4], (Kind::Float, Device::Cpu)),
    ];
    let device = grad_sq_norm_tensor(&grads);
    assert_eq!(device.kind(), Kind::Double);
    assert_eq!(device.size(), Vec::<i64>::new());
    assert_eq!(
        device.double_value(&[]).to_bits(),
        grad_sq_norm(&grads).to_bits()
    );
    assert_eq!(grad_sq_norm_tensor(&[]).double_value(&[]), 0.0);
}
