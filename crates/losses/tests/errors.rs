//! The kind of a loss error, not only its message.

use rpo_losses::{dpo_loss, ipo_loss, LossError};
use tch::Tensor;

#[test]
fn unpaired_log_ratios_are_a_shape_error() {
    let err = dpo_loss(
        &Tensor::zeros([3], tch::kind::FLOAT_CPU),
        &Tensor::zeros([2], tch::kind::FLOAT_CPU),
        0.1,
    )
    .unwrap_err();
    assert!(matches!(err, LossError::Shape(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "chosen log-ratios (3) and rejected log-ratios (2) must pair up one to one"
    );
}

#[test]
fn a_non_positive_beta_is_an_invalid_argument() {
    let x = Tensor::zeros([2], tch::kind::FLOAT_CPU);
    let err = ipo_loss(&x, &x, 0.0).unwrap_err();
    assert!(matches!(err, LossError::Invalid(_)), "{err:?}");
}
