//! `data.eval_fraction`: held-out examples split off the training file when no eval file
//! is given. The split depends only on the seed and the number of examples, so every
//! rank and every rerun holds out the same ones.

use crate::error::{DataError, Result};

use crate::stable_rng::{domain, permutation};

/// (train, held out): round(n × fraction) examples drawn by the seed, both parts in
/// file order. Leaves at least one training example.
pub fn split_held_out<T>(examples: Vec<T>, fraction: f64, seed: u64) -> Result<(Vec<T>, Vec<T>)> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(DataError::Invalid(format!(
            "data.eval_fraction = {fraction} must be in [0, 1)"
        )));
    }
    let n = examples.len();
    let held = ((n as f64 * fraction).round() as usize).min(n.saturating_sub(1));
    let mut is_held = vec![false; n];
    for &i in &permutation(n, seed, domain::HELD_OUT)[..held] {
        is_held[i] = true;
    }
    let (mut train, mut eval) = (Vec::with_capacity(n - held), Vec::with_capacity(held));
    for (example, held) in examples.into_iter().zip(is_held) {
        if held {
            eval.push(example);
        } else {
            train.push(example);
        }
    }
    Ok((train, eval))
}
