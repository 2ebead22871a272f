//! Decoding (generation with a key/value cache) from a sharded model, one unit at a time:
//! every forward gathers each unit's parameters (an all-gather in stage 3) and frees them
//! after use, so a rank never holds more than one unit beyond its shard (two with tied
//! embeddings, where the head reads the embedding). Every rank must decode together — its
//! own share of the prompts — so the gathers match: [`rpo_model::generate`] keeps them in
//! step through [`Decoder::any_rank`]. A failed collective is returned as
//! [`DecodeError::Decoder`] holding the [`CommError`](rpo_comm::CommError).

use rpo_model::{DecodeError, Decoder, KvCache, LlamaConfig, UnitId};
use tch::{Device, Kind, Tensor};

use crate::sharded_model::ShardedModel;

/// A [`Decoder`] over a [`ShardedModel`] (any stage; below stage 3 the gathers are no-ops).
pub struct ShardedDecoder<'a> {
    model: &'a ShardedModel,
}

impl<'a> ShardedDecoder<'a> {
    pub fn new(model: &'a ShardedModel) -> Self {
        Self { model }
    }

    fn tied(&self) -> bool {
        self.model.model.config().tie_word_embeddings
    }
}

impl Decoder for ShardedDecoder<'_> {
    fn config(&self) -> &LlamaConfig {
        self.model.model.config()
    }

    fn device(&self) -> Device {
        self.model.model.device()
    }

    fn forward_cached(&self, ids: &Tensor, cache: &mut KvCache) -> Result<Tensor, DecodeError> {
        let m = self.model;
        let llama = &m.model;
        let (embed, head) = (m.unit(UnitId::Embed), m.unit(UnitId::Head));
        let angles = llama.rotary(cache.len(), ids.size()[1]);
        m.gather(embed).map_err(DecodeError::decoder)?;
        let mut x = llama.embed(ids);
        if !self.tied() {
            m.release(embed);
        }
        for (i, layer) in llama.layers().iter().enumerate() {
            let unit = m.unit(UnitId::Layer(i));
            m.gather(unit).map_err(DecodeError::decoder)?;
            x = layer.forward_cached(&x, &angles, cache.layer_mut(i));
            m.release(unit);
        }
        m.gather(head).map_err(DecodeError::decoder)?;
        let logits = llama.head(&x);
        m.release(head);
        if self.tied() {
            m.release(embed);
        }
        Ok(logits)
    }

    fn any_rank(&self, mine: bool) -> Result<bool, DecodeError> {
        let comm = self.model.comm.as_ref();
        if comm.world_size() == 1 {
            return Ok(mine);
        }
        let mut flag = Tensor::from_slice(&[mine as u8 as f32])
            .to_kind(Kind::Float)
            .to_device(comm.device());
        comm.all_reduce(&mut flag).map_err(DecodeError::decoder)?;
        Ok(rpo_comm::host::to_host_f64(&flag).map_err(DecodeError::decoder)? > 0.0)
    }

    /// The gathers of [`forward_cached`](Self::forward_cached), in its order, without the
    /// computation.
    fn idle_forward(&self) -> Result<(), DecodeError> {
        let m = self.model;
        for unit in UnitId::all(m.model.layers().len()) {
            let i = m.unit(unit);
            m.gather(i).map_err(DecodeError::decoder)?;
            m.release(i);
        }
        Ok(())
    }
}
