//! Deterministic batch order: which dataset indices form each global batch, epoch after epoch.
//!
//! Each epoch's order is drawn from its own random stream of the seed, so any batch can be
//! found again from a saved [`SamplerPosition`] without replaying earlier epochs. Batches are
//! always full: the examples left over at the end of an epoch wait for a later epoch.

use crate::error::{DataError, Result};
use serde::{Deserialize, Serialize};

use crate::stable_rng::{domain, permutation};

/// The next batch to be drawn: batch `batch` of epoch `epoch`. Save it to resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SamplerPosition {
    pub epoch: u64,
    pub batch: usize,
}

impl SamplerPosition {
    /// The position `n_batches` later.
    pub fn advanced(self, n_batches: u64, batches_per_epoch: usize) -> Self {
        let per_epoch = batches_per_epoch as u64;
        let absolute = self.epoch * per_epoch + self.batch as u64 + n_batches;
        Self {
            epoch: absolute / per_epoch,
            batch: (absolute % per_epoch) as usize,
        }
    }
}

/// A source of global batches (lists of dataset indices).
pub trait Sampler {
    fn batch_size(&self) -> usize;

    /// At least 1 for every sampler that could be built.
    fn batches_per_epoch(&self) -> usize;

    /// All batches of one epoch, in order.
    fn epoch_batches(&self, epoch: u64) -> Vec<Vec<usize>>;

    /// An endless iterator over batches, starting at `from`.
    fn batches(&self, from: SamplerPosition) -> Batches<&Self>
    where
        Self: Sized,
    {
        Batches::new(self, from)
    }
}

/// A borrowed or boxed sampler samples the same batches (so [`Batches`] can own either).
impl<S: Sampler + ?Sized> Sampler for &S {
    fn batch_size(&self) -> usize {
        (**self).batch_size()
    }
    fn batches_per_epoch(&self) -> usize {
        (**self).batches_per_epoch()
    }
    fn epoch_batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        (**self).epoch_batches(epoch)
    }
}

impl<S: Sampler + ?Sized> Sampler for Box<S> {
    fn batch_size(&self) -> usize {
        (**self).batch_size()
    }
    fn batches_per_epoch(&self) -> usize {
        (**self).batches_per_epoch()
    }
    fn epoch_batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        (**self).epoch_batches(epoch)
    }
}

/// Uniformly shuffled batches of `batch_size` examples (pairs, or SFT examples).
#[derive(Debug, Clone)]
pub struct PairedSampler {
    len: usize,
    batch_size: usize,
    seed: u64,
}

impl PairedSampler {
    pub fn new(len: usize, batch_size: usize, seed: u64) -> Result<Self> {
        if batch_size == 0 {
            return Err(DataError::Invalid("batch size must be positive".into()));
        }
        if len < batch_size {
            return Err(DataError::Invalid(format!(
                "{len} examples do not fill one batch of {batch_size}"
            )));
        }
        Ok(Self {
            len,
            batch_size,
            seed,
        })
    }
}

impl Sampler for PairedSampler {
    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn batches_per_epoch(&self) -> usize {
        self.len / self.batch_size
    }

    fn epoch_batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        permutation(self.len, self.seed, domain::PAIRED_EPOCH | epoch)
            .chunks_exact(self.batch_size)
            .map(<[usize]>::to_vec)
            .collect()
    }
}

/// Batches with `batch_size / 2` desirable and `batch_size / 2` undesirable examples.
/// Each class is shuffled on its own (as KTO's and the paper's loaders do) and the
/// batch alternates desirable, undesirable, ..., so every even-sized contiguous rank
/// slice is balanced too.
#[derive(Debug, Clone)]
pub struct BalancedSampler {
    desirable: Vec<usize>,
    undesirable: Vec<usize>,
    batch_size: usize,
    seed: u64,
}

impl BalancedSampler {
    /// `desirable[i]` is example i's label.
    pub fn new(desirable: &[bool], batch_size: usize, seed: u64) -> Result<Self> {
        if !(batch_size > 0 && batch_size.is_multiple_of(2)) {
            return Err(DataError::Invalid(format!(
                "a balanced batch needs a positive even size, got {batch_size}"
            )));
        }
        let (good, bad): (Vec<usize>, Vec<usize>) =
            (0..desirable.len()).partition(|&i| desirable[i]);
        let half = batch_size / 2;
        if !(good.len() >= half && bad.len() >= half) {
            return Err(DataError::Invalid(format!(
                "{} desirable and {} undesirable examples do not fill one batch of {half} + {half}",
                good.len(),
                bad.len()
            )));
        }
        Ok(Self {
            desirable: good,
            undesirable: bad,
            batch_size,
            seed,
        })
    }
}

impl Sampler for BalancedSampler {
    fn batch_size(&self) -> usize {
        self.batch_size
    }

    fn batches_per_epoch(&self) -> usize {
        self.desirable.len().min(self.undesirable.len()) / (self.batch_size / 2)
    }

    fn epoch_batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        let shuffled = |class: &[usize], stream: u64| -> Vec<usize> {
            permutation(class.len(), self.seed, stream | epoch)
                .into_iter()
                .map(|i| class[i])
                .collect()
        };
        let good = shuffled(&self.desirable, domain::DESIRABLE_EPOCH);
        let bad = shuffled(&self.undesirable, domain::UNDESIRABLE_EPOCH);
        let half = self.batch_size / 2;
        (0..self.batches_per_epoch())
            .map(|k| {
                let range = k * half..(k + 1) * half;
                good[range.clone()]
                    .iter()
                    .zip(&bad[range])
                    .flat_map(|(&g, &b)| [g, b])
                    .collect()
            })
            .collect()
    }
}

/// Endless batches from a [`Sampler`]; keeps the current epoch's plan.
pub struct Batches<S> {
    sampler: S,
    position: SamplerPosition,
    plan: Option<(u64, Vec<Vec<usize>>)>,
}

impl<S: Sampler> Batches<S> {
    /// Batches of `sampler` (owned, borrowed or boxed) from `from` on.
    pub fn new(sampler: S, from: SamplerPosition) -> Self {
        Self {
            sampler,
            position: from,
            plan: None,
        }
    }

    /// Where the next batch comes from (save this to resume).
    pub fn position(&self) -> SamplerPosition {
        self.position
    }

    /// Skips `n` batches without drawing them.
    pub fn skip_batches(&mut self, n: u64) {
        self.position = self.position.advanced(n, self.sampler.batches_per_epoch());
    }
}

impl<S: Sampler> Iterator for Batches<S> {
    type Item = Vec<usize>;

    fn next(&mut self) -> Option<Vec<usize>> {
        let epoch = self.position.epoch;
        if self.plan.as_ref().map(|(e, _)| *e) != Some(epoch) {
            self.plan = Some((epoch, self.sampler.epoch_batches(epoch)));
        }
        let (_, plan) = self.plan.as_ref().expect("plan just set");
        assert!(
            self.position.batch < plan.len(),
            "sampler position {:?} is past the {} batches of an epoch (was it saved for another dataset or batch size?)",
            self.position,
            plan.len()
        );
        let batch = plan[self.position.batch].clone();
        self.position = self.position.advanced(1, plan.len());
        Some(batch)
    }
}
