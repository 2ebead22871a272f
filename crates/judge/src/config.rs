//! Settings of the HTTP judge: a TOML file (every key known), command-line values on top,
//! and the environment for what neither gives.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::{JudgeError, Result};
use crate::prompts::Task;

/// The judge config file, e.g.
/// ```toml
/// base_url = "https://api.openai.com/v1"
/// model = "gpt-4-0613"
/// task = "summarization"
/// ```
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// The endpoint's base URL; `/chat/completions` is appended unless already there.
    /// Else `RPO_JUDGE_BASE_URL`.
    pub base_url: Option<String>,
    /// The judge model. Else `RPO_JUDGE_MODEL`.
    pub model: Option<String>,
    /// Better left to the environment: `RPO_JUDGE_API_KEY`, else `OPENAI_API_KEY`.
    /// Without any, requests carry no Authorization header (a local server).
    pub api_key: Option<String>,
    /// Which appendix-H prompt: "dialogue" (default) or "summarization".
    pub task: Option<Task>,
    /// Seconds before one request is abandoned (and retried).
    pub timeout_s: Option<f64>,
    /// Retries of one request after a 408, 429, 5xx or transport failure.
    pub max_retries: Option<u32>,
    /// The first retry waits this long, each next one twice as long …
    pub backoff_initial_s: Option<f64>,
    /// … up to this (also the cap on a server's Retry-After).
    pub backoff_max_s: Option<f64>,
    /// Requests in flight at once.
    pub concurrency: Option<usize>,
    /// A cap on the judge's answer length, if wanted (the verdict is short).
    pub max_tokens: Option<u32>,
}

/// Everything the HTTP judge needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub task: Task,
    pub timeout_s: f64,
    pub max_retries: u32,
    pub backoff_initial_s: f64,
    pub backoff_max_s: f64,
    pub concurrency: usize,
    pub max_tokens: Option<u32>,
}

fn invalid(message: String) -> JudgeError {
    JudgeError::Settings(message)
}

impl JudgeConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| JudgeError::file("cannot read judge config", path, e))?;
        toml::from_str(&text).map_err(|source| JudgeError::ConfigFile {
            path: path.to_path_buf(),
            source,
        })
    }

    /// `self`'s values where set, `over`'s where set on top.
    pub fn overridden_by(self, over: JudgeConfig) -> Self {
        Self {
            base_url: over.base_url.or(self.base_url),
            model: over.model.or(self.model),
            api_key: over.api_key.or(self.api_key),
            task: over.task.or(self.task),
            timeout_s: over.timeout_s.or(self.timeout_s),
            max_retries: over.max_retries.or(self.max_retries),
            backoff_initial_s: over.backoff_initial_s.or(self.backoff_initial_s),
            backoff_max_s: over.backoff_max_s.or(self.backoff_max_s),
            concurrency: over.concurrency.or(self.concurrency),
            max_tokens: over.max_tokens.or(self.max_tokens),
        }
    }

    /// Fills what is unset from `env` (the process environment in use; a map in tests),
    /// then the defaults, and refuses what cannot work.
    pub fn resolve(self, env: impl Fn(&str) -> Option<String>) -> Result<HttpSettings> {
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let base_url = self
            .base_url
            .or_else(|| env("RPO_JUDGE_BASE_URL"))
            .ok_or_else(|| {
                invalid(
                    "the HTTP judge needs an endpoint: set RPO_JUDGE_BASE_URL (or base_url in the \
                     judge config), e.g. https://api.openai.com/v1"
                        .into(),
                )
            })?;
        let model = self.model.or_else(|| env("RPO_JUDGE_MODEL")).ok_or_else(|| {
            invalid(
                "the HTTP judge needs a model: set RPO_JUDGE_MODEL (or model in the judge config or --judge-model)"
                    .into(),
            )
        })?;
        let api_key = self
            .api_key
            .or_else(|| env("RPO_JUDGE_API_KEY"))
            .or_else(|| env("OPENAI_API_KEY"));
        let s = HttpSettings {
            base_url,
            model,
            api_key,
            task: self.task.unwrap_or_default(),
            timeout_s: self.timeout_s.unwrap_or(120.0),
            max_retries: self.max_retries.unwrap_or(6),
            backoff_initial_s: self.backoff_initial_s.unwrap_or(1.0),
            backoff_max_s: self.backoff_max_s.unwrap_or(60.0),
            concurrency: self.concurrency.unwrap_or(4),
            max_tokens: self.max_tokens,
        };
        if !(s.base_url.starts_with("http://") || s.base_url.starts_with("https://")) {
            return Err(invalid(format!(
                "judge base_url {:?} must start with http:// or https://",
                s.base_url
            )));
        }
        if s.timeout_s.is_nan() || s.timeout_s <= 0.0 {
            return Err(invalid(format!(
                "judge timeout_s must be positive, not {}",
                s.timeout_s
            )));
        }
        if !(s.backoff_initial_s >= 0.0 && s.backoff_max_s >= s.backoff_initial_s) {
            return Err(invalid(format!(
                "judge backoff must satisfy 0 <= backoff_initial_s ({}) <= backoff_max_s ({})",
                s.backoff_initial_s, s.backoff_max_s
            )));
        }
        if s.concurrency == 0 {
            return Err(invalid("judge concurrency must be at least 1".into()));
        }
        if s.api_key.is_none() {
            tracing::warn!(
                "no judge API key (RPO_JUDGE_API_KEY, OPENAI_API_KEY): requests carry none"
            );
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn file_and_flags_come_before_the_environment() {
        let file: JudgeConfig =
            toml::from_str("base_url = \"http://file/v1\"\ntask = \"summarization\"").unwrap();
        let flags = JudgeConfig {
            model: Some("flag-model".into()),
            ..Default::default()
        };
        let s = file
            .overridden_by(flags)
            .resolve(env(&[
                ("RPO_JUDGE_BASE_URL", "http://env/v1"),
                ("RPO_JUDGE_MODEL", "env-model"),
                ("OPENAI_API_KEY", "sk-openai"),
            ]))
            .unwrap();
        assert_eq!(s.base_url, "http://file/v1");
        assert_eq!(s.model, "flag-model");
        assert_eq!(s.task, Task::Summarization);
        assert_eq!(s.api_key.as_deref(), Some("sk-openai"));
        let s = JudgeConfig::default()
            .resolve(env(&[
                ("RPO_JUDGE_BASE_URL", "https://env/v1"),
                ("RPO_JUDGE_MODEL", "m"),
                ("RPO_JUDGE_API_KEY", "sk-rpo"),
                ("OPENAI_API_KEY", "sk-openai"),
            ]))
            .unwrap();
        assert_eq!(
            (s.base_url.as_str(), s.api_key.as_deref()),
            ("https://env/v1", Some("sk-rpo"))
        );
        assert_eq!(s.task, Task::Dialogue);
    }

    #[test]
    fn missing_or_bad_settings_are_named() {
        let e = JudgeConfig::default()
            .resolve(env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("RPO_JUDGE_BASE_URL"), "{e}");
        let e = JudgeConfig::default()
            .resolve(env(&[("RPO_JUDGE_BASE_URL", "http://x")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("RPO_JUDGE_MODEL"), "{e}");
        let e = toml::from_str::<JudgeConfig>("modle = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("modle"), "{e}");
        let e = toml::from_str::<JudgeConfig>("task = \"chat\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("chat"), "{e}");
        let bad = JudgeConfig {
            base_url: Some("api.openai.com".into()),
            model: Some("m".into()),
            ..Default::default()
        };
        assert!(bad
            .resolve(env(&[]))
            .unwrap_err()
            .to_string()
            .contains("http://"));
    }
}
