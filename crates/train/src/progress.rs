//! The terminal progress bar of a run's phases (hidden when stderr is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

pub(crate) fn progress_bar(len: u64, name: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>5} [{bar:30}] {pos}/{len} {elapsed}<{eta} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(name.to_string());
    bar
}
