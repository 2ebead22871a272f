//! What micro-batches and steps report: [`DeviceStats`] while a step runs (sums left on
//! the device, counts on the host), [`RewardStats`] once the step's one read brought the
//! sums back (a record: plain numbers, no imports from the training modules).

use tch::{Kind, Tensor};

/// Reward sums and counts of one optimizer step (or one evaluation), on the host.
#[derive(Debug, Default, Clone)]
pub struct RewardStats {
    pub chosen_sum: f64,
    pub chosen_count: usize,
    pub rejected_sum: f64,
    pub rejected_count: usize,
    /// Comparisons won by the chosen side and comparisons made: matched pairs for
    /// paired data, every (desirable, undesirable) pair of the batch for unpaired data.
    pub correct: f64,
    pub compared: usize,
    /// Real (non-padding) tokens of the policy's forwards.
    pub tokens: usize,
    /// Positions the policy computed (padding included, shared prompts once).
    pub tokens_computed: usize,
}

impl RewardStats {
    pub fn mean_chosen(&self) -> Option<f64> {
        (self.chosen_count > 0).then(|| self.chosen_sum / self.chosen_count as f64)
    }

    pub fn mean_rejected(&self) -> Option<f64> {
        (self.rejected_count > 0).then(|| self.rejected_sum / self.rejected_count as f64)
    }

    pub fn accuracy(&self) -> Option<f64> {
        (self.compared > 0).then(|| self.correct / self.compared as f64)
    }
}

/// Where each figure sits in [`DeviceStats::sums`].
const LOSS: i64 = 0;
const SUMS: i64 = 4;

/// One micro-batch's figures, or their sum over a step's micro-batches, before the step's
/// one device-to-host read: the values that come out of tensors stay on the device (f64),
/// the counts known from the batch's shapes stay on the host.
#[derive(Debug, Default)]
pub struct DeviceStats {
    /// f64 `[4]` on the device: this rank's view of the loss, Σ chosen rewards, Σ rejected
    /// rewards, comparisons won. `None` before anything was added (all zero).
    sums: Option<Tensor>,
    pub chosen_count: usize,
    pub rejected_count: usize,
    pub compared: usize,
    pub tokens: usize,
    pub tokens_computed: usize,
}

impl DeviceStats {
    /// A micro-batch's figures: `loss` (this rank's view, any real kind, read as f64), the
    /// implicit rewards of its chosen and rejected sides, the comparisons won (`correct`,
    /// f64); absent ones are 0. Nothing is read from the device.
    pub fn micro(
        loss: &Tensor,
        rewards: Option<(&Tensor, &Tensor)>,
        correct: Option<&Tensor>,
        tokens: usize,
        tokens_computed: usize,
    ) -> Self {
        let zero = || Tensor::zeros([], (Kind::Double, loss.device()));
        let (chosen_sum, rejected_sum, chosen_count, rejected_count) = match rewards {
            Some((c, r)) => (
                c.sum(Kind::Double),
                r.sum(Kind::Double),
                c.size()[0] as usize,
                r.size()[0] as usize,
            ),
            None => (zero(), zero(), 0, 0),
        };
        let correct = correct.map_or_else(zero, |c| c.to_kind(Kind::Double));
        let sums = Tensor::stack(
            &[
                loss.detach().to_kind(Kind::Double),
                chosen_sum,
                rejected_sum,
                correct.detach(),
            ],
            0,
        );
        Self {
            sums: Some(sums),
            chosen_count,
            rejected_count,
            compared: 0,
            tokens,
            tokens_computed,
        }
    }

    /// This rank's view of the loss (summed over the merged micro-batches), a 0-dim f64
    /// tensor on the device (0 on the CPU before anything was added).
    pub fn loss(&self) -> Tensor {
        match &self.sums {
            Some(s) => s.get(LOSS),
            None => Tensor::zeros([], (Kind::Double, tch::Device::Cpu)),
        }
    }

    /// Adds `other` (another micro-batch) to these figures, on the device. The sums start
    /// from 0 and add in micro-batch order, as f64 additions of the same values the host
    /// would add (so a figure is the same number a host-side sum gives, bit for bit).
    pub fn merge(&mut self, other: &DeviceStats) {
        if let Some(o) = &other.sums {
            self.sums = Some(match &self.sums {
                None => o.zeros_like() + o,
                Some(s) => s + o,
            });
        }
        self.chosen_count += other.chosen_count;
        self.rejected_count += other.rejected_count;
        self.compared += other.compared;
        self.tokens += other.tokens;
        self.tokens_computed += other.tokens_computed;
    }

    /// The step's figures as one f64 vector on `device`, ready to be summed over ranks:
    /// the loss divided by `accumulation` (this rank's mean over its micro-batches), the
    /// reward sums and comparisons won, then the host counts and `extra` (uploaded).
    /// [`STEP_FIGURES`] entries; [`from_step_vector`] reads them back.
    pub fn step_vector(&self, accumulation: usize, extra: f64, device: tch::Device) -> Tensor {
        let sums = match &self.sums {
            Some(s) => s.shallow_clone(),
            None => Tensor::zeros([SUMS], (Kind::Double, device)),
        };
        let counts = Tensor::from_slice(&[
            self.chosen_count as f64,
            self.rejected_count as f64,
            self.compared as f64,
            self.tokens as f64,
            self.tokens_computed as f64,
            extra,
        ])
        .to_device(device);
        Tensor::cat(
            &[
                sums.narrow(0, LOSS, 1) / accumulation as f64,
                sums.narrow(0, 1, SUMS - 1),
                counts,
            ],
            0,
        )
    }
}

/// Entries of [`DeviceStats::step_vector`].
pub const STEP_FIGURES: usize = 10;

/// The step's figures from the host values of [`DeviceStats::step_vector`] (summed over
/// the `world` ranks): the loss (mean over ranks), the reward statistics, and `extra`.
pub fn from_step_vector(v: &[f64], world: usize) -> (f64, RewardStats, f64) {
    assert_eq!(v.len(), STEP_FIGURES, "step figures");
    let stats = RewardStats {
        chosen_sum: v[1],
        rejected_sum: v[2],
        correct: v[3],
        chosen_count: v[4] as usize,
        rejected_count: v[5] as usize,
        compared: v[6] as usize,
        tokens: v[7] as usize,
        tokens_computed: v[8] as usize,
    };
    (v[0] / world as f64, stats, v[9])
}

impl DeviceStats {
    /// The figures on the host, in one device-to-host read (for an evaluation, which sums
    /// its batches like a step; a training step reads them with its gradient norm instead).
    pub fn read(&self) -> crate::error::Result<RewardStats> {
        let device = self.sums.as_ref().map_or(tch::Device::Cpu, Tensor::device);
        let v = rpo_comm::host::to_host_f64s(&self.step_vector(1, 0.0, device))?;
        Ok(from_step_vector(&v, 1).1)
    }
}
