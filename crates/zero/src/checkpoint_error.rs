//! Why a training checkpoint cannot be resumed from: the caller acts on the kind (another
//! checkpoint may do for a corrupt one; a mismatch means the config changed).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(
        "{path} is neither a checkpoint (no manifest.json) nor a folder of checkpoints (no latest)"
    )]
    NotACheckpoint { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a checkpoint manifest: {source}")]
    BadManifest {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: format {found} is not one this build reads ({expected})")]
    UnknownFormat {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("checkpoint {dir} is missing {file}")]
    MissingFile { dir: PathBuf, file: String },
    #[error("{path} is corrupt: {bytes} bytes with checksum {crc:08x}, but the manifest says {expected_bytes} bytes with {expected_crc:08x}")]
    Corrupt {
        path: PathBuf,
        bytes: u64,
        crc: u32,
        expected_bytes: u64,
        expected_crc: u32,
    },
    /// The checkpoint is intact but was written for another model than this run's.
    #[error("{dir} was written for another model: {detail}")]
    ModelMismatch { dir: PathBuf, detail: String },
}
