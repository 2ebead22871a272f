//! Rust-only properties: identities between the losses, the row-partition seam, errors.

use rpo_losses::{
    contrast_weights, dpo_loss, embedding_weights, kto_kl_estimate, pair_metrics, rpo_loss,
    rpo_row_losses, sequence_logps, RowBlock, Weighting,
};
use tch::{Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

fn logratios(n: i64) -> Tensor {
    Tensor::randn([n], F64) * 3.0
}

fn all_weightings() -> [Weighting; 5] {
    [
        Weighting::Embedding { tau: 0.5 },
        Weighting::UniformPaper,
        Weighting::UniformCode,
        Weighting::DiagonalPaper { alpha: 0.8 },
        Weighting::DiagonalCode { alpha: 0.8 },
    ]
}

#[test]
fn uniform_code_is_the_plain_mean_over_all_pairs() {
    tch::manual_seed(1);
    let (a, b, beta) = (logratios(3), logratios(5), 0.4);
    let mut sum = 0.0;
    for i in 0..3 {
        for j in 0..5 {
            let s = beta * (a.double_value(&[i]) - b.double_value(&[j]));
            sum += (1.0 + (-s).exp()).ln(); // −log σ(s)
        }
    }
    let loss = rpo_loss(&a, &b, None, None, &Weighting::UniformCode, beta).unwrap();
    assert!((scalar(&loss) - sum / 15.0).abs() < 1e-12);
}

#[test]
fn code_diagonal_with_alpha_one_is_dpo() {
    tch::manual_seed(2);
    let (a, b) = (logratios(6), logratios(6));
    let rpo = rpo_loss(
        &a,
        &b,
        None,
        None,
        &Weighting::DiagonalCode { alpha: 1.0 },
        0.1,
    )
    .unwrap();
    let dpo = dpo_loss(&a, &b, 0.1).unwrap();
    assert!((scalar(&rpo) - scalar(&dpo)).abs() < 1e-12);
}

#[test]
fn paper_diagonal_with_alpha_one_is_dpo_over_m_plus_log2_off_diagonal() {
    // Off-diagonal weights vanish, so those M(M−1) entries are each −log σ(0) = log 2.
    tch::manual_seed(3);
    let m = 5;
    let (a, b) = (logratios(m), logratios(m));
    let w = Weighting::DiagonalPaper { alpha: 1.0 };
    let rpo = scalar(&rpo_loss(&a, &b, None, None, &w, 0.1).unwrap());
    let dpo = scalar(&dpo_loss(&a, &b, 0.1).unwrap());
    let m = m as f64;
    let expected = dpo / m + (m - 1.0) / m * 2f64.ln();
    assert!((rpo - expected).abs() < 1e-12, "{rpo} vs {expected}");
}

#[test]
fn row_blocks_sum_to_the_whole_loss_for_every_weighting() {
    // The seam for a row-partitioned global contrast matrix: each block computes its rows
    // against all columns; Σ rows / M is the full loss, and so are the gradients.
    tch::manual_seed(4);
    let m = 6;
    let emb = Tensor::randn([m, 4], F64);
    for w in all_weightings() {
        let a = logratios(m).set_requires_grad(true);
        let b = logratios(m).set_requires_grad(true);
        let full = rpo_loss(&a, &b, Some(&emb), Some(&emb), &w, 0.3).unwrap();
        let (ga, gb) = grads(&full, &a, &b);

        let (a2, b2) = (
            a.detach().set_requires_grad(true),
            b.detach().set_requires_grad(true),
        );
        let blocks: Vec<Tensor> = [(0, 2), (2, 3), (5, 1)]
            .into_iter()
            .map(|(first, rows)| {
                let (wins, win_emb) = (a2.narrow(0, first, rows), emb.narrow(0, first, rows));
                rpo_row_losses(&wins, &b2, Some(&win_emb), Some(&emb), &w, 0.3, first).unwrap()
            })
            .collect();
        let partitioned = Tensor::cat(&blocks, 0).sum(Kind::Double) / m as f64;
        let (pa, pb) = grads(&partitioned, &a2, &b2);
        assert!(
            (scalar(&full) - scalar(&partitioned)).abs() < 1e-12,
            "{w:?}"
        );
        assert!(ga.allclose(&pa, 1e-10, 1e-12, false), "{w:?} ∂a");
        assert!(gb.allclose(&pb, 1e-10, 1e-12, false), "{w:?} ∂b");
    }
}

fn grads(loss: &Tensor, a: &Tensor, b: &Tensor) -> (Tensor, Tensor) {
    let g = Tensor::run_backward(&[loss], &[a, b], false, false);
    (g[0].shallow_clone(), g[1].shallow_clone())
}

#[test]
fn diagonal_weightings_refuse_unpaired_matrices() {
    let (a, b) = (Tensor::zeros([3], F64), Tensor::zeros([4], F64));
    for w in [
        Weighting::DiagonalPaper { alpha: 0.8 },
        Weighting::DiagonalCode { alpha: 0.8 },
    ] {
        let err = rpo_loss(&a, &b, None, None, &w, 0.1).unwrap_err();
        assert!(err.to_string().contains("paired"), "{err}");
    }
}

#[test]
fn code_diagonal_needs_an_off_diagonal_entry() {
    let one = Tensor::zeros([1], F64);
    let w = Weighting::DiagonalCode { alpha: 0.8 };
    assert!(rpo_loss(&one, &one, None, None, &w, 0.1).is_err());
}

#[test]
fn embedding_weighting_needs_embeddings_and_matching_shapes() {
    let (a, b) = (Tensor::zeros([2], F64), Tensor::zeros([3], F64));
    let w = Weighting::Embedding { tau: 0.5 };
    assert!(rpo_loss(&a, &b, None, None, &w, 0.1).is_err());
    let wrong_rows = Tensor::randn([3, 4], F64);
    let lose = Tensor::randn([3, 4], F64);
    let err = rpo_loss(&a, &b, Some(&wrong_rows), Some(&lose), &w, 0.1).unwrap_err();
    assert!(err.to_string().contains("contrast block"), "{err}");
}

#[test]
fn empty_sides_are_errors() {
    let (none, some) = (Tensor::zeros([0], F64), Tensor::zeros([2], F64));
    assert!(rpo_loss(&none, &some, None, None, &Weighting::UniformCode, 0.1).is_err());
    assert!(rpo_loss(&some, &none, None, None, &Weighting::UniformCode, 0.1).is_err());
}

#[test]
fn embedding_weights_are_row_stochastic_and_scale_free() {
    tch::manual_seed(5);
    let (win, lose) = (Tensor::randn([3, 8], F64), Tensor::randn([5, 8], F64));
    let w = embedding_weights(&win, &lose, 0.75, Kind::Double).unwrap();
    let row_sums = w.sum_dim_intlist(1, false, None);
    assert!(row_sums.allclose(&Tensor::ones([3], F64), 1e-12, 1e-12, false));
    let rescaled = embedding_weights(&(&win * 7.0), &(&lose * 0.1), 0.75, Kind::Double).unwrap();
    assert!(w.allclose(&rescaled, 1e-12, 1e-12, false));
}

#[test]
fn embedding_weights_favour_similar_prompts() {
    // The reference code's distance form: a lose prompt identical to the win prompt gets
    // the largest weight in its row.
    tch::manual_seed(6);
    let lose = Tensor::randn([4, 8], F64);
    let win = lose.narrow(0, 2, 1);
    let w = embedding_weights(&win, &lose, 0.5, Kind::Double).unwrap();
    assert_eq!(w.argmax(1, false).int64_value(&[0]), 2);
}

#[test]
fn paper_diagonal_weights_in_a_row_block() {
    let block = RowBlock {
        first_row: 2,
        rows: 2,
        cols: 4,
    };
    let w = contrast_weights(
        &Weighting::DiagonalPaper { alpha: 0.7 },
        block,
        None,
        None,
        F64,
    )
    .unwrap();
    let off = 0.3 / 3.0;
    let want = Tensor::from_slice(&[off, off, 0.7, off, off, off, off, 0.7]).reshape([2, 4]);
    assert!(w.allclose(&want, 1e-15, 0.0, false), "{w}");
}

#[test]
fn sequence_logps_ignores_masked_positions_and_upcasts_bf16() {
    tch::manual_seed(7);
    let logits = Tensor::randn([2, 4, 9], (Kind::Float, Device::Cpu));
    let labels = Tensor::from_slice(&[1i64, -100, 3, 0, 8, 2, -100, 5]).reshape([2, 4]);
    let mask =
        Tensor::from_slice(&[true, false, true, false, true, true, false, true]).reshape([2, 4]);
    let got = sequence_logps(&logits, &labels, &mask).unwrap();
    let logp = logits.log_softmax(-1, Kind::Float);
    let picks = [(0, 0, 1), (0, 2, 3), (1, 0, 8), (1, 1, 2), (1, 3, 5)];
    let mut want = [0.0f64; 2];
    for (b, t, v) in picks {
        want[b as usize] += logp.double_value(&[b, t, v]);
    }
    assert!(got.allclose(
        &Tensor::from_slice(&want).to_kind(Kind::Float),
        1e-5,
        1e-5,
        false
    ));

    let half = sequence_logps(&logits.to_kind(Kind::BFloat16), &labels, &mask).unwrap();
    assert_eq!(half.kind(), Kind::Float);
}

#[test]
fn sequence_logps_rejects_mismatched_shapes() {
    let logits = Tensor::zeros([2, 4, 9], F64);
    let labels = Tensor::zeros([2, 3], (Kind::Int64, Device::Cpu));
    let err = sequence_logps(&logits, &labels, &labels).unwrap_err();
    assert!(err.to_string().contains("labels"), "{err}");
}

#[test]
fn kto_kl_estimate_is_detached_and_clamped() {
    let kl = Tensor::from_slice(&[-3.0, 1.0]).set_requires_grad(true);
    let estimate = kto_kl_estimate(&kl).unwrap();
    assert_eq!(scalar(&estimate), 0.0);
    assert!(!estimate.requires_grad());
    let positive = kto_kl_estimate(&Tensor::from_slice(&[3.0, 1.0])).unwrap();
    assert_eq!(scalar(&positive), 2.0);
}

#[test]
fn pair_metrics_of_matched_pairs() {
    let a = Tensor::from_slice(&[2.0, -1.0, 0.5]).set_requires_grad(true);
    let b = Tensor::from_slice(&[1.0, 1.0, 0.5]);
    let m = pair_metrics(&a, &b, 0.1).unwrap();
    assert!(!m.chosen_rewards.requires_grad());
    let close = |t: &Tensor, v: &[f64]| t.allclose(&Tensor::from_slice(v), 1e-12, 1e-12, false);
    assert!(close(&m.chosen_rewards, &[0.2, -0.1, 0.05]));
    assert!(close(&m.margins, &[0.1, -0.2, 0.0]));
    assert!(close(&m.accuracies, &[1.0, 0.0, 0.0]));
    assert!(pair_metrics(&a, &Tensor::zeros([2], F64), 0.1).is_err());
}
