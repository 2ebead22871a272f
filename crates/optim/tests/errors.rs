//! The kind of an optimizer error, not only its message.

use rpo_optim::{OptimError, Optimizer, RmsProp, RmsPropConfig};
use tch::Tensor;

#[test]
fn a_gradient_of_another_shape_is_a_shape_error() {
    let mut opt = RmsProp::new(RmsPropConfig::default());
    let mut params = [Tensor::zeros([3], tch::kind::FLOAT_CPU)];
    let grads = [Tensor::zeros([2], tch::kind::FLOAT_CPU)];
    let err = opt.step(&mut params, &grads, 0.1).unwrap_err();
    assert!(matches!(err, OptimError::Shape(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "gradient 0 has shape [2] but its parameter [3]"
    );
}

#[test]
fn a_state_without_step_is_a_state_error() {
    let mut opt = RmsProp::new(RmsPropConfig::default());
    let err = opt.load_state_tensors(&[]).unwrap_err();
    assert!(matches!(err, OptimError::State(_)), "{err:?}");
    assert_eq!(err.to_string(), "optimizer state has no `step`");
}
