//! Metrics as JSON lines: one object per optimizer step in `<out_dir>/metrics.jsonl`.

use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{Result, TrainError};

/// What one optimizer step reports. Rewards are β·(π − ref), detached, averaged over
/// the step's examples; accuracy is the share of matched pairs with chosen > rejected
/// (unpaired: of all desirable × undesirable pairs of each global micro-batch, whatever
/// the number of ranks). Every figure covers all ranks. Reward fields are null in the SFT
/// warm-up, which has no reference yet.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepMetrics {
    /// "sft" during the SFT warm-up, otherwise the loss name.
    pub phase: String,
    pub step: usize,
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    pub rewards_chosen: Option<f64>,
    pub rewards_rejected: Option<f64>,
    pub reward_margin: Option<f64>,
    pub reward_accuracy: Option<f64>,
    /// Non-padding tokens processed by the policy this step.
    pub tokens: usize,
    /// Positions the policy computed this step: padding included, a shared prompt once
    /// (so `1 − tokens/tokens_computed` is the padding fraction when prompts are not shared).
    pub tokens_computed: usize,
    pub step_time_s: f64,
    /// Bytes rank 0's ZeRO collectives (parameter gathers, gradient reductions) moved this
    /// step, counted DeepSpeed's way (the full buffer of each collective).
    pub zero_bytes: u64,
    /// Seconds rank 0's policy forwards and backwards spent in ZeRO collective calls
    /// this step (starting, testing and waiting for parameter gathers and gradient
    /// reduce-scatters; not the optimizer step's): with `[zero] overlap`, what overlap
    /// left unhidden.
    pub zero_wait_s: f64,
    /// Device-to-host reads this step made (`rpo_comm::host`): one, for these metrics
    /// and the gradient norm, never one per micro-batch.
    pub host_reads: u64,
}

/// Appends JSON lines, flushed after each line so a crash loses nothing written.
pub struct MetricsWriter {
    /// `None` on ranks other than 0, which compute the same metrics but write nothing.
    out: Option<BufWriter<File>>,
}

impl MetricsWriter {
    pub fn create(path: &Path) -> Result<Self> {
        let f = File::create(path).map_err(|e| TrainError::io("cannot create", path, e))?;
        Ok(Self {
            out: Some(BufWriter::new(f)),
        })
    }

    /// Continues `path` after step `step` (a resumed run): lines of later steps, which the
    /// interrupted run wrote after its checkpoint, are dropped.
    pub fn resume(path: &Path, step: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let kept: String = text
            .lines()
            .filter(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v["step"].as_u64())
                    .is_some_and(|s| s as usize <= step)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        std::fs::write(path, kept).map_err(|e| TrainError::io("cannot write", path, e))?;
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| TrainError::io("cannot open", path, e))?;
        Ok(Self {
            out: Some(BufWriter::new(f)),
        })
    }

    /// A writer that writes nothing.
    pub fn discard() -> Self {
        Self { out: None }
    }

    pub fn write<T: Serialize>(&mut self, record: &T) -> Result<()> {
        let Some(out) = &mut self.out else {
            return Ok(());
        };
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")?;
        out.flush()?;
        Ok(())
    }
}

/// An optional metric for a log line: three decimals, or "n/a".
pub fn show(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.3}"))
}
