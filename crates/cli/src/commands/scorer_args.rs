//! Command-line choice of a [`Scorer`] for `sample` and `prefs`: the flags become a
//! [`ScorerSpec`], which `[online] judge` builds from too.

use anyhow::{bail, Result};
use rpo_judge::scoring::{MatchMode, ScorerSpec};
use rpo_judge::Scorer;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScorerKind {
    /// The built-in synthetic suite's checker.
    Synthetic,
    /// Exact, normalised or regex match against a field of the prompt's record.
    Match,
    /// An external program: JSONL samples on stdin, one score a line on stdout.
    Command,
    /// An OpenAI-compatible chat endpoint, each sample against a reference field.
    Http,
}

#[derive(clap::Args)]
pub struct ScorerArgs {
    /// Score every sample with this judge (adds `score` and `label` to each line).
    #[arg(long = "judge", value_enum)]
    pub kind: Option<ScorerKind>,
    /// match/http: the prompt record's field that holds the reference answer.
    #[arg(long, default_value = "reference")]
    pub reference_field: String,
    /// match: exact, normalized or regex (the field holds a pattern).
    #[arg(long, value_enum, default_value = "exact")]
    pub match_mode: MatchModeArg,
    /// command: run through `sh -c`.
    #[arg(long)]
    pub judge_command: Option<String>,
    /// command/http: a sample is desirable when its score is at least this.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f64,
    /// command: seconds the program may take for all samples.
    #[arg(long, default_value_t = 600.0)]
    pub judge_timeout_s: f64,
    /// http: judge settings (TOML, as for `eval --judge-config`).
    #[arg(long)]
    pub judge_config: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MatchModeArg {
    Exact,
    Normalized,
    Regex,
}

impl From<MatchModeArg> for MatchMode {
    fn from(m: MatchModeArg) -> Self {
        match m {
            MatchModeArg::Exact => MatchMode::Exact,
            MatchModeArg::Normalized => MatchMode::Normalized,
            MatchModeArg::Regex => MatchMode::Regex,
        }
    }
}

impl ScorerArgs {
    /// The scorer asked for (None without `--judge`); `out_dir` holds an HTTP judge's cache.
    pub fn build(&self, seed: u64, out_dir: &Path) -> Result<Option<Box<dyn Scorer>>> {
        let Some(kind) = self.kind else {
            if self.judge_command.is_some() {
                bail!("--judge-command needs --judge command");
            }
            return Ok(None);
        };
        if self.judge_command.is_some() != (kind == ScorerKind::Command) {
            bail!("--judge command and --judge-command CMD go together");
        }
        if !self.threshold.is_finite() {
            bail!("--threshold must be a finite number");
        }
        let spec = match kind {
            ScorerKind::Synthetic => ScorerSpec::Synthetic,
            ScorerKind::Match => ScorerSpec::Match {
                field: self.reference_field.clone(),
                mode: self.match_mode.into(),
            },
            ScorerKind::Command => ScorerSpec::Command {
                command: self.judge_command.clone().expect("checked above"),
                threshold: self.threshold,
                timeout: Duration::from_secs_f64(self.judge_timeout_s.max(0.0)),
            },
            ScorerKind::Http => ScorerSpec::http(
                self.judge_config.as_deref(),
                seed,
                &out_dir.join("judge_cache.jsonl"),
                self.reference_field.clone(),
                self.threshold,
            )?,
        };
        Ok(Some(spec.build()))
    }
}
