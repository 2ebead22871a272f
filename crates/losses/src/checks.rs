//! Shape checks with messages that name the offending argument.

use crate::error::Result;
use tch::Tensor;

/// Length of a 1-D tensor; errors if `t` is not 1-D.
pub(crate) fn vector_len(t: &Tensor, what: &str) -> Result<i64> {
    let size = t.size();
    ensure!(
        size.len() == 1,
        Shape,
        "{what} must be a 1-D tensor, got shape {size:?}"
    );
    Ok(size[0])
}

/// Common length of two 1-D tensors of matched pairs.
pub(crate) fn pair_len(a: &Tensor, a_name: &str, b: &Tensor, b_name: &str) -> Result<i64> {
    let (n, m) = (vector_len(a, a_name)?, vector_len(b, b_name)?);
    ensure!(
        n == m,
        Shape,
        "{a_name} ({n}) and {b_name} ({m}) must pair up one to one"
    );
    Ok(n)
}

/// Common length of matched chosen and rejected log-ratios (win `i` pairs with lose `i`).
pub(crate) fn logratio_pairs_len(
    chosen_logratios: &Tensor,
    rejected_logratios: &Tensor,
) -> Result<i64> {
    pair_len(
        chosen_logratios,
        "chosen log-ratios",
        rejected_logratios,
        "rejected log-ratios",
    )
}
