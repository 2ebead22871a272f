//! Key/value cache for incremental decoding: per layer, the rotated keys and the
//! values of every position seen so far.

use tch::Tensor;

/// One layer's cache: keys and values `[B, kv_heads, S, head_dim]`.
#[derive(Debug, Default)]
pub struct LayerKvCache {
    keys_values: Option<(Tensor, Tensor)>,
}

impl LayerKvCache {
    /// Number of cached positions.
    pub fn len(&self) -> i64 {
        self.keys_values.as_ref().map_or(0, |(k, _)| k.size()[2])
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends new keys and values along the sequence and returns all of them.
    pub(crate) fn append(&mut self, keys: Tensor, values: Tensor) -> (Tensor, Tensor) {
        let all = match self.keys_values.take() {
            None => (keys, values),
            Some((k, v)) => (Tensor::cat(&[k, keys], 2), Tensor::cat(&[v, values], 2)),
        };
        self.keys_values = Some((all.0.shallow_clone(), all.1.shallow_clone()));
        all
    }
}

/// The cache of a whole model.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<LayerKvCache>,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        KvCache {
            layers: (0..num_layers).map(|_| LayerKvCache::default()).collect(),
        }
    }

    /// Number of cached positions (the same in every layer).
    pub fn len(&self) -> i64 {
        self.layers.first().map_or(0, LayerKvCache::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn layer_mut(&mut self, index: usize) -> &mut LayerKvCache {
        &mut self.layers[index]
    }
}
