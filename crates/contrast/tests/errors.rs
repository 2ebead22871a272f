//! The kind of a contrast error, not only its message.

use rpo_comm::SingleProcess;
use rpo_contrast::{contrast, ContrastError, ContrastForm, ContrastInputs, ContrastScope};
use rpo_losses::Weighting;
use tch::{Device, Tensor};

#[test]
fn an_unknown_scope_is_a_scope_error() {
    let err = "group:0".parse::<ContrastScope>().unwrap_err();
    assert!(matches!(err, ContrastError::Scope(_)), "{err:?}");
    let err = ContrastScope::Group(3).size(4).unwrap_err();
    assert!(matches!(err, ContrastError::Scope(_)), "{err:?}");
}

#[test]
fn embeddings_the_weighting_does_not_read_are_invalid() {
    let x = Tensor::zeros([2], tch::kind::DOUBLE_CPU);
    let emb = Tensor::zeros([2, 4], tch::kind::DOUBLE_CPU);
    let inputs = ContrastInputs {
        chosen: &x,
        rejected: &x,
        win_emb: Some(&emb),
        lose_emb: Some(&emb),
        counts: None,
    };
    let scope = SingleProcess::new(Device::Cpu);
    let err = contrast(
        &scope,
        &inputs,
        &Weighting::UniformCode,
        0.1,
        ContrastForm::RowPartitioned,
    )
    .err()
    .unwrap();
    assert!(matches!(err, ContrastError::Invalid(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "UniformCode does not read prompt embeddings"
    );
}

#[test]
fn a_loss_that_refuses_its_inputs_is_carried_whole() {
    let x = Tensor::zeros([2, 2], tch::kind::DOUBLE_CPU);
    let inputs = ContrastInputs {
        chosen: &x,
        rejected: &x,
        win_emb: None,
        lose_emb: None,
        counts: Some(&[[2, 2]]),
    };
    let scope = SingleProcess::new(Device::Cpu);
    let err = contrast(
        &scope,
        &inputs,
        &Weighting::UniformCode,
        0.1,
        ContrastForm::Replicated,
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, ContrastError::Loss(rpo_losses::LossError::Shape(_))),
        "{err:?}"
    );
}
