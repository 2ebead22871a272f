//! Why a judge or a scorer could not give its verdicts: the caller acts on the kind. A
//! generations file with a bad line names its file and line; an external judge command
//! that did not start, failed, timed out or answered the wrong thing says which, with
//! its output line where that is the fault; the HTTP judge tells a refused request (the
//! server's status and message) from an endpoint that never answered (retries spent) and
//! from an answer that is not a chat completion; the judge cache is named when it cannot
//! be opened, read or written; the data crate's errors pass through whole.
//!
//! Every message is the one the `anyhow` errors gave before: where a context wrapped the
//! error that stopped it, the variant's message is the context and the error its
//! `source`, so `{:#}` through anyhow prints the same chain.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use rpo_data::DataError;

/// The ways judging or scoring can fail.
#[derive(Debug, thiserror::Error)]
pub enum JudgeError {
    /// I/O on a named file or folder; `action` says what was tried ("cannot read
    /// generations", "cannot read judge config", "cannot create", "cannot write",
    /// "writing").
    #[error("{action} {}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The HTTP judge's answer cache that cannot be opened, read or written (`action`:
    /// "cannot open", "cannot read", "cannot write"). Unreadable lines in it are skipped,
    /// not errors: they only cost a request.
    #[error("{action} judge cache {}", path.display())]
    Cache {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A judge config file that is not valid TOML or has an unknown key.
    #[error("in judge config {}", path.display())]
    ConfigFile {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// Judge settings that are missing (no endpoint, no model) or out of range, or an
    /// unknown task name; the message says what to set.
    #[error("{0}")]
    Settings(String),
    /// A line of a generations file that is not a generation.
    #[error("{}:{line}: not a generation (a JSON object with string fields prompt, response, reference)", path.display())]
    Generation {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    /// A generations file without a generation.
    #[error("{}: no generations in the file", path.display())]
    NoGenerations { path: PathBuf },
    /// The comparison of the generation at `path`:`line` failed.
    #[error("judging {}:{line}", path.display())]
    Judging {
        path: PathBuf,
        line: usize,
        source: Box<JudgeError>,
    },
    /// The endpoint refused a request with a status that retrying cannot fix (4xx other
    /// than 408 and 429); `hint` says what to check for 401/403, `text` is the start of
    /// the server's message.
    #[error("judge endpoint {url} answered HTTP {code}{hint}: {text}")]
    Status {
        url: String,
        code: u16,
        hint: &'static str,
        text: String,
    },
    /// A request that cannot be sent at all (an invalid URL, an unknown scheme, …).
    #[error("judge endpoint {url}: {reason}")]
    Transport { url: String, reason: String },
    /// The endpoint did not answer within the retries (transport failures, 408, 429,
    /// 5xx); `last` is the last failure. Answers so far are cached.
    #[error(
        "judge endpoint {url}: gave up after {attempts} attempts; last: {last} \
         (answers so far are cached: run again to resume)"
    )]
    GaveUp {
        url: String,
        attempts: u32,
        last: String,
    },
    /// The body of a successful answer could not be read.
    #[error("reading the answer of {url}")]
    ReadAnswer { url: String, source: std::io::Error },
    /// An answer that is not a chat completion (not JSON, or no `choices[0].message`);
    /// `reason` says which and quotes its start.
    #[error("the answer of {url}: {reason}")]
    BadAnswer { url: String, reason: String },
    /// The external judge command could not be started.
    #[error("cannot start the judge command `{command}`")]
    CommandStart {
        command: String,
        source: std::io::Error,
    },
    /// The external judge command ran longer than its timeout and was killed.
    #[error(
        "the judge command `{command}` ran past its timeout of {:.0} s and was killed",
        timeout.as_secs_f64()
    )]
    CommandTimeout { command: String, timeout: Duration },
    /// The external judge command exited unsuccessfully; `stderr` is the end of what it
    /// wrote there.
    #[error("the judge command `{command}` failed ({status}); its stderr ends:\n{stderr}")]
    CommandFailed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    /// The external judge command wrote `lines` score lines for `samples` samples.
    #[error(
        "the judge command `{command}` wrote {lines} score lines for {samples} samples \
         (one line per sample, in order)"
    )]
    CommandLineCount {
        command: String,
        lines: usize,
        samples: usize,
    },
    /// Output line `line` (1-based) of the external judge command is not a score.
    #[error(
        "the judge command `{command}`, output line {line}: {text:?} is neither a finite \
         number nor {{\"score\": number}}"
    )]
    CommandOutput {
        command: String,
        line: usize,
        text: String,
    },
    /// A field of a sample's prompt record that is missing or not a string.
    #[error("{0}")]
    Field(String),
    /// A sample's regex field that does not compile.
    #[error("sample {index}: field `{field}` is not a valid regex")]
    Regex {
        index: usize,
        field: String,
        source: regex::Error,
    },
    /// The HTTP judge's answer for a sample has no verdict (a scorer must not guess one).
    #[error("sample {index}: the judge's answer has no verdict: {reply:?}")]
    NoVerdict { index: usize, reply: String },
    /// A scorer's failure on one sample; `context` names the sample.
    #[error("{context}")]
    Sample {
        context: String,
        source: Box<JudgeError>,
    },
    #[error(transparent)]
    Data(#[from] DataError),
    /// I/O whose error names no file (as before): the judge command's pipes, the cache's
    /// torn-line repair, writing comparisons.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// JSON serialisation of what is written or sent (as before, unnamed).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

pub type Result<T, E = JudgeError> = std::result::Result<T, E>;

impl JudgeError {
    pub(crate) fn file(
        action: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        JudgeError::File {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn cache(
        action: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> Self {
        JudgeError::Cache {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// `self` as the cause of a scorer's failure on the sample `context` names.
    pub(crate) fn in_sample(self, context: String) -> Self {
        JudgeError::Sample {
            context,
            source: Box::new(self),
        }
    }
}
