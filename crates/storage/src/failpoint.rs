//! Test-only aborts at the points where a crash must be survived (a checkpoint folder or
//! a cache written but not yet renamed into place). With the `failpoints` feature (only
//! the test builds turn it on, through dev-dependencies) `hit(name)` aborts the process
//! when the environment variable `RPO_SHARD_FAILPOINT` equals `name`; without it `hit`
//! is empty and neither the variable's name nor the check is in the binary.

/// Aborts the process if the `failpoints` feature is on and `RPO_SHARD_FAILPOINT` is
/// `name`; `what` is printed first (the file that was about to be renamed).
#[cfg(feature = "failpoints")]
pub fn hit(name: &str, what: &std::path::Path) {
    const ENV: &str = "RPO_SHARD_FAILPOINT";
    if std::env::var(ENV).ok().as_deref() == Some(name) {
        eprintln!(
            "{ENV}: aborting before {} is renamed into place",
            what.display()
        );
        std::process::abort();
    }
}

/// Without the `failpoints` feature: nothing.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str, _what: &std::path::Path) {}
