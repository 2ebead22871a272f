//! Parameter creation with Hugging Face's `LlamaPreTrainedModel` initialisation:
//! normal(0, initializer_range) for linear and embedding weights, zero biases,
//! ones for norm weights. Loading a checkpoint skips the random draw.

use tch::nn::{self, Init};

/// How new parameters are filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ParamInit {
    /// Transformers' random initialisation with this standard deviation.
    Random { std: f64 },
    /// Zeros: the values are about to be overwritten by a checkpoint.
    Placeholder,
    /// Uninitialised memory that is never touched (so never resident): a sharded owner
    /// re-points the tensors before they are read (see [`crate::Llama::deferred`]).
    Deferred,
}

impl ParamInit {
    fn weight(self) -> Init {
        match self {
            ParamInit::Random { std } => Init::Randn {
                mean: 0.0,
                stdev: std,
            },
            ParamInit::Placeholder | ParamInit::Deferred => Init::Const(0.0),
        }
    }
}

/// A `[out, in]` linear layer named `<path>.weight` (and `<path>.bias`).
pub(crate) fn linear(
    path: nn::Path,
    in_dim: i64,
    out_dim: i64,
    bias: bool,
    init: ParamInit,
) -> nn::Linear {
    if init == ParamInit::Deferred {
        let empty = |dims: &[i64]| tch::Tensor::empty(dims, (tch::Kind::Float, path.device()));
        return nn::Linear {
            ws: path.add("weight", empty(&[out_dim, in_dim]), true),
            bs: bias.then(|| path.add("bias", empty(&[out_dim]), true)),
        };
    }
    let config = nn::LinearConfig {
        ws_init: init.weight(),
        bs_init: Some(Init::Const(0.0)),
        bias,
    };
    nn::linear(path, in_dim, out_dim, config)
}

/// An embedding table `<path>.weight` of shape `[rows, dim]`; the padding row
/// starts at zero, as in transformers.
pub(crate) fn embedding(
    path: nn::Path,
    rows: i64,
    dim: i64,
    padding_idx: Option<i64>,
    init: ParamInit,
) -> tch::Tensor {
    if init == ParamInit::Deferred {
        let empty = tch::Tensor::empty([rows, dim], (tch::Kind::Float, path.device()));
        return path.add("weight", empty, true);
    }
    let weight = path.var("weight", &[rows, dim], init.weight());
    if let Some(pad) = padding_idx.filter(|&p| (0..rows).contains(&p)) {
        tch::no_grad(|| {
            let _ = weight.get(pad).zero_();
        });
    }
    weight
}

/// A norm scale `<path>.weight`, initialised to ones.
pub(crate) fn norm_weight(path: nn::Path, dim: i64) -> tch::Tensor {
    path.var("weight", &[dim], Init::Const(1.0))
}
