//! One file per subcommand.
pub mod config;
pub mod synth;
pub mod train;
