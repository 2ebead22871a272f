//! `rpo-shard`: train language models with preference objectives.

mod commands;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "rpo-shard",
    version,
    about = "Relative Preference Optimization (and DPO, IPO, KTO, SFT) at cluster scale"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a policy from a TOML config (the embedded default when none is given).
    Train(commands::train::Args),
    /// Precompute a run's prompt embeddings into the cache file training reads (embedding.cache).
    Embed(commands::embed::Args),
    /// Precompute the reference's log-probs of a run into the cache reference.mode = "precomputed" reads.
    PrecomputeRef(commands::precompute_ref::Args),
    /// Print a config (the embedded default, or a file with overrides applied), fully resolved.
    Config(commands::config::Args),
    /// Consolidate a training checkpoint (any ranks, any ZeRO stage) into a Hugging Face folder.
    Convert(commands::convert::Args),
    /// Generate responses to prompts (--prompts FILE, or a run's held-out ones; greedy or sampled; data-parallel under mpirun).
    Generate(commands::generate::Args),
    /// k sampled responses per prompt (data-parallel under mpirun), optionally scored by a judge.
    Sample(commands::sample::Args),
    /// Preference data (paired or unpaired JSONL) from scored samples.
    Prefs(commands::prefs::Args),
    /// Win rate of generated responses against the preferred ones, through a judge.
    Eval(commands::eval::Args),
    /// Write a randomly initialised model as a Hugging Face folder (from a preset or a config.json).
    InitModel(commands::init_model::Args),
    /// Write the built-in synthetic preference suite as JSONL (and optionally train its tokenizer).
    Synth(commands::synth::Args),
    /// Tokenizers for your own models: `tokenizer train --data FILES --vocab N --out DIR`.
    Tokenizer(commands::tokenizer::Args),
    /// Per-rank memory of a config at every ZeRO stage, bytes moved per step, and what fits a GPU.
    Plan(commands::plan::Args),
    /// Check the collectives and the contrast scopes on this launch (run under mpirun).
    Selftest(commands::selftest::Args),
}

fn main() {
    // Under mpirun, rank 0 tells the story; the other ranks speak up only for warnings.
    let default_level = if rpo_comm::launched_rank() == 0 {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("RPO_LOG").unwrap_or_else(|_| EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(a) => commands::train::run(a),
        Command::Embed(a) => commands::embed::run(a),
        Command::PrecomputeRef(a) => commands::precompute_ref::run(a),
        Command::Config(a) => commands::config::run(a),
        Command::Synth(a) => commands::synth::run(a),
        Command::InitModel(a) => commands::init_model::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Generate(a) => commands::generate::run(a),
        Command::Sample(a) => commands::sample::run(a),
        Command::Prefs(a) => commands::prefs::run(a),
        Command::Convert(a) => commands::convert::run(a),
        Command::Selftest(a) => commands::selftest::run(a),
        Command::Tokenizer(a) => commands::tokenizer::run(a),
        Command::Plan(a) => commands::plan::run(a),
    };
    if let Err(e) = result {
        if let Some(p) = preempted(&e) {
            if rpo_comm::launched_rank() == 0 {
                eprintln!("{p}");
            }
            std::process::exit(rpo_train::preemption::EXIT_PREEMPTED);
        }
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// The signal stop this error is, if it is one: `train`'s, or an online round's.
fn preempted(e: &anyhow::Error) -> Option<&rpo_train::preemption::Preempted> {
    e.downcast_ref::<rpo_train::TrainError>()
        .and_then(rpo_train::TrainError::preempted)
        .or_else(|| {
            e.downcast_ref::<rpo_online::OnlineError>()
                .and_then(rpo_online::OnlineError::preempted)
        })
}
