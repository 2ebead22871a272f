//! Rotary position embedding in Hugging Face's half-split layout (`rotate_half`).

use tch::{Device, Kind, Tensor};

/// The rotary frequencies of one model (`head_dim`, `rope_theta`).
#[derive(Debug, Clone, Copy)]
pub struct Rope {
    head_dim: i64,
    theta: f64,
}

/// cos and sin of the rotation angles for a run of consecutive positions, `[T, head_dim]`, fp32.
#[derive(Debug)]
pub struct RotaryAngles {
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    pub fn new(head_dim: i64, theta: f64) -> Self {
        Rope { head_dim, theta }
    }

    /// Angles for positions `offset .. offset + len`, `[len, head_dim]`.
    pub fn angles(&self, offset: i64, len: i64, device: Device) -> RotaryAngles {
        self.angles_at(&Tensor::arange_start(
            offset,
            offset + len,
            (Kind::Int64, device),
        ))
    }

    /// Angles for arbitrary position ids: `[T]` gives `[T, head_dim]`, `[R, T]` gives
    /// `[R, 1, T, head_dim]` (broadcast over the heads of `[R, H, T, head_dim]`).
    /// Computed in fp32 like transformers (`inv_freq = 1 / theta^(2i/d)`,
    /// `emb = cat(freqs, freqs)`).
    pub fn angles_at(&self, positions: &Tensor) -> RotaryAngles {
        let device = positions.device();
        let exponents = Tensor::arange_start_step(0, self.head_dim, 2, (Kind::Int64, device))
            .to_kind(Kind::Float)
            / self.head_dim as f64;
        let inv_freq = Tensor::pow_scalar(self.theta, &exponents).reciprocal();
        let freqs = positions.to_kind(Kind::Float).unsqueeze(-1) * inv_freq;
        let emb = Tensor::cat(&[&freqs, &freqs], -1);
        let emb = if positions.dim() == 2 {
            emb.unsqueeze(1)
        } else {
            emb
        };
        RotaryAngles {
            cos: emb.cos(),
            sin: emb.sin(),
        }
    }
}

impl RotaryAngles {
    /// Number of positions covered (per row).
    pub fn len(&self) -> i64 {
        self.cos.size()[self.cos.dim() - 2]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rotates `x: [B, H, T, head_dim]`; the angles are cast to `x`'s dtype first, as in transformers.
    pub fn apply(&self, x: &Tensor) -> Tensor {
        let cos = self.cos.to_kind(x.kind());
        let sin = self.sin.to_kind(x.kind());
        x * cos + rotate_half(x) * sin
    }
}

/// `[x1, x2] -> [-x2, x1]` over the last dimension.
fn rotate_half(x: &Tensor) -> Tensor {
    let half = x
        .size()
        .last()
        .copied()
        .expect("rotary input has a last dimension")
        / 2;
    let x1 = x.narrow(-1, 0, half);
    let x2 = x.narrow(-1, half, half);
    Tensor::cat(&[&(-x2), &x1], -1)
}
