//! The judge's answers on disk, so an interrupted evaluation resumes without paying twice.
//!
//! A JSONL file of `{"key", "model", "candidate_position", "reply", …}` lines, appended
//! and flushed after every answer. The key is the SHA-256 of everything that decides the
//! answer at temperature 0: the model, the exact message sent (template, prompt and both
//! responses in their order), the candidate's position, and the two responses.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{JudgeError, Result};

/// One cached answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CachedReply {
    pub key: String,
    pub model: String,
    pub candidate_position: u8,
    pub reply: String,
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

pub struct ReplyCache {
    path: PathBuf,
    entries: Mutex<HashMap<String, CachedReply>>,
    file: Mutex<File>,
}

/// The cache key of one request.
pub fn cache_key(
    model: &str,
    message: &str,
    candidate_position: u8,
    candidate: &str,
    reference: &str,
) -> String {
    // A JSON array, so no field can run into the next.
    let fields = serde_json::json!([model, message, candidate_position, candidate, reference]);
    let digest = Sha256::digest(fields.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl ReplyCache {
    /// Opens (or creates) the cache file. A line that does not parse — the torn last line
    /// of an interrupted write, say — is skipped with a warning: it only costs a request.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| JudgeError::file("cannot create", dir, e))?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| JudgeError::cache("cannot open", path, e))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| JudgeError::cache("cannot read", path, e))?;
        let mut entries = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<CachedReply>(line) {
                Ok(r) => {
                    entries.insert(r.key.clone(), r);
                }
                Err(e) => tracing::warn!(
                    "{}:{}: skipping an unreadable cache line ({e})",
                    path.display(),
                    i + 1
                ),
            }
        }
        // A torn last line must not swallow the next entry appended after it.
        if !text.is_empty() && !text.ends_with('\n') {
            file.seek(SeekFrom::End(0))?;
            file.write_all(b"\n")?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, key: &str) -> Option<CachedReply> {
        self.entries.lock().unwrap().get(key).cloned()
    }

    /// Appends one answer as a whole line and flushes it.
    pub fn put(&self, reply: CachedReply) -> Result<()> {
        let mut line = serde_json::to_string(&reply)?;
        line.push('\n');
        {
            let mut file = self.file.lock().unwrap();
            file.write_all(line.as_bytes())
                .and_then(|()| file.flush())
                .map_err(|e| JudgeError::cache("cannot write", &self.path, e))?;
        }
        self.entries
            .lock()
            .unwrap()
            .insert(reply.key.clone(), reply);
        Ok(())
    }
}
