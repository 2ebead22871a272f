//! A judge behind any OpenAI-compatible chat-completions endpoint (the paper used GPT-4).

use rand_chacha::rand_core::RngCore;
use rpo_data::stable_rng::stable_rng;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

use crate::cache::{cache_key, CachedReply, ReplyCache};
use crate::config::HttpSettings;
use crate::error::{JudgeError, Result};
use crate::generations::Generation;
use crate::outcome::{Judgement, Outcome};
use crate::prompts::{parse_verdict, Verdict};
use crate::Judge;

/// Stream numbers of the position draws: `JUDGE_ORDER | comparison index`, apart from
/// the data pipeline's streams (rpo_data::stable_rng's domains stop at 4 << 48).
const JUDGE_ORDER: u64 = 16 << 48;

/// Where the candidate is shown in comparison `index` (1 or 2): a fair coin from `seed`,
/// drawn from the comparison's own stream, so it depends on neither the order in which
/// comparisons run nor how many there are.
pub fn candidate_position(seed: u64, index: usize) -> u8 {
    1 + (stable_rng(seed, JUDGE_ORDER | index as u64).next_u64() & 1) as u8
}

/// Sends each comparison as one user message with the task's appendix-H prompt, the two
/// responses in a seeded random order, at temperature 0, and reads the verdict with
/// [`parse_verdict`]. Identical responses are a tie without a request. Answers are cached
/// (see [`ReplyCache`]); 408, 429, 5xx and transport failures are retried with exponential
/// backoff (or the server's `Retry-After`), at most `max_retries` times; any other status
/// stops the evaluation with the server's message.
pub struct HttpJudge {
    settings: HttpSettings,
    seed: u64,
    cache: ReplyCache,
    agent: ureq::Agent,
    url: String,
}

/// One answered request.
struct Answer {
    reply: String,
    requests: u32,
    prompt_tokens: u64,
    completion_tokens: u64,
}

impl HttpJudge {
    pub fn new(settings: HttpSettings, seed: u64, cache: &Path) -> Result<Self> {
        let base = settings.base_url.trim_end_matches('/');
        let url = if base.ends_with("/chat/completions") {
            base.to_string()
        } else {
            format!("{base}/chat/completions")
        };
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs_f64(settings.timeout_s))
            .build();
        Ok(Self {
            cache: ReplyCache::open(cache)?,
            settings,
            seed,
            agent,
            url,
        })
    }

    pub fn cache(&self) -> &ReplyCache {
        &self.cache
    }

    fn backoff(&self, attempt: u32, retry_after: Option<f64>) -> Duration {
        let s = &self.settings;
        let exponential = s.backoff_initial_s * 2f64.powi(attempt as i32);
        Duration::from_secs_f64(
            retry_after
                .unwrap_or(exponential)
                .clamp(0.0, s.backoff_max_s),
        )
    }

    fn ask(&self, message: &str) -> Result<Answer> {
        let s = &self.settings;
        let mut body = json!({
            "model": s.model,
            "messages": [{"role": "user", "content": message}],
            "temperature": 0,
        });
        if let Some(n) = s.max_tokens {
            body["max_tokens"] = json!(n);
        }
        let body = body.to_string();
        let attempts = s.max_retries + 1;
        let mut last_error = String::new();
        for attempt in 0..attempts {
            let mut request = self
                .agent
                .post(&self.url)
                .set("Content-Type", "application/json");
            if let Some(key) = &s.api_key {
                request = request.set("Authorization", &format!("Bearer {key}"));
            }
            let retry_after = match request.send_string(&body) {
                Ok(response) => {
                    let text = response
                        .into_string()
                        .map_err(|source| JudgeError::ReadAnswer {
                            url: self.url.clone(),
                            source,
                        })?;
                    return parse_completion(&text, attempt + 1).map_err(|reason| {
                        JudgeError::BadAnswer {
                            url: self.url.clone(),
                            reason,
                        }
                    });
                }
                Err(ureq::Error::Status(code, response)) => {
                    let retry_after = response
                        .header("Retry-After")
                        .and_then(|v| v.trim().parse::<f64>().ok());
                    let text = response.into_string().unwrap_or_default();
                    let text = snippet(&text);
                    if !(code == 408 || code == 429 || code >= 500) {
                        let hint = if code == 401 || code == 403 {
                            " (check RPO_JUDGE_API_KEY / OPENAI_API_KEY or api_key)"
                        } else {
                            ""
                        };
                        return Err(JudgeError::Status {
                            url: self.url.clone(),
                            code,
                            hint,
                            text,
                        });
                    }
                    last_error = format!("HTTP {code}: {text}");
                    retry_after
                }
                Err(ureq::Error::Transport(t)) => {
                    use ureq::ErrorKind::*;
                    if matches!(
                        t.kind(),
                        InvalidUrl | UnknownScheme | InsecureRequestHttpsOnly | InvalidProxyUrl
                    ) {
                        return Err(JudgeError::Transport {
                            url: self.url.clone(),
                            reason: t.to_string(),
                        });
                    }
                    last_error = t.to_string();
                    None
                }
            };
            if attempt + 1 < attempts {
                let wait = self.backoff(attempt, retry_after);
                tracing::warn!(
                    "judge request failed ({last_error}); retry {} of {} in {:.1} s",
                    attempt + 1,
                    s.max_retries,
                    wait.as_secs_f64()
                );
                std::thread::sleep(wait);
            }
        }
        Err(JudgeError::GaveUp {
            url: self.url.clone(),
            attempts,
            last: last_error,
        })
    }
}

/// `choices[0].message.content` of a chat completion; a null content (a refusal, a
/// content filter) is an empty reply, which reads as unparsable. An error says why the
/// text is not a completion, quoting its start.
fn parse_completion(text: &str, requests: u32) -> Result<Answer, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON ({e}): {}", snippet(text)))?;
    let message = v
        .pointer("/choices/0/message")
        .ok_or_else(|| format!("no choices[0].message in {}", snippet(text)))?;
    let reply = message
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let tokens = |k: &str| v.pointer(&format!("/usage/{k}")).and_then(Value::as_u64);
    Ok(Answer {
        reply,
        requests,
        prompt_tokens: tokens("prompt_tokens").unwrap_or(0),
        completion_tokens: tokens("completion_tokens").unwrap_or(0),
    })
}

/// The start of a server's message, for errors.
fn snippet(text: &str) -> String {
    const MAX: usize = 500;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

impl Judge for HttpJudge {
    fn name(&self) -> String {
        "http".into()
    }

    fn settings(&self) -> Value {
        let s = &self.settings;
        json!({
            "base_url": s.base_url,
            "model": s.model,
            "task": s.task.name(),
            "seed": self.seed,
            "temperature": 0,
            "cache": self.cache.path(),
        })
    }

    fn concurrency(&self) -> usize {
        self.settings.concurrency
    }

    fn compare(&self, index: usize, g: &Generation) -> Result<Judgement> {
        let position = candidate_position(self.seed, index);
        if g.response.trim() == g.reference.trim() {
            return Ok(Judgement {
                candidate_position: Some(position),
                ..Judgement::new(Outcome::Tie)
            });
        }
        let (first, second) = match position {
            1 => (&g.response, &g.reference),
            _ => (&g.reference, &g.response),
        };
        let task = self.settings.task;
        let message = task.render(&g.prompt, first, second);
        let key = cache_key(
            &self.settings.model,
            &message,
            position,
            &g.response,
            &g.reference,
        );
        let (answer, cached) = match self.cache.get(&key) {
            Some(c) => (
                Answer {
                    reply: c.reply,
                    requests: 0,
                    prompt_tokens: 0,
                    completion_tokens: 0,
                },
                true,
            ),
            None => {
                let a = self.ask(&message)?;
                self.cache.put(CachedReply {
                    key,
                    model: self.settings.model.clone(),
                    candidate_position: position,
                    reply: a.reply.clone(),
                    prompt_tokens: a.prompt_tokens,
                    completion_tokens: a.completion_tokens,
                })?;
                (a, false)
            }
        };
        let outcome = match (parse_verdict(&answer.reply, task.noun()), position) {
            (Verdict::First, 1) | (Verdict::Second, 2) => Outcome::Win,
            (Verdict::First, _) | (Verdict::Second, _) => Outcome::Loss,
            (Verdict::Tie, _) => Outcome::Tie,
            (Verdict::Unparsable, _) => Outcome::Unparsable,
        };
        Ok(Judgement {
            candidate_position: Some(position),
            reply: Some(answer.reply),
            cached: Some(cached),
            requests: answer.requests,
            prompt_tokens: answer.prompt_tokens,
            completion_tokens: answer.completion_tokens,
            ..Judgement::new(outcome)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_fair_coins_fixed_by_the_seed() {
        let draw = |seed| {
            (0..200)
                .map(|i| candidate_position(seed, i))
                .collect::<Vec<_>>()
        };
        let a = draw(0);
        assert_eq!(a, draw(0));
        assert_ne!(a, draw(1));
        let firsts = a.iter().filter(|&&p| p == 1).count();
        assert!((70..=130).contains(&firsts), "{firsts} of 200 first");
        assert!(a.iter().all(|&p| p == 1 || p == 2));
    }

    #[test]
    fn completions_are_read_and_null_content_is_an_empty_reply() {
        let a = parse_completion(
            r#"{"choices":[{"message":{"role":"assistant","content":"Response 2"}}],"usage":{"prompt_tokens":7,"completion_tokens":2}}"#,
            3,
        )
        .unwrap();
        assert_eq!(
            (
                a.reply.as_str(),
                a.requests,
                a.prompt_tokens,
                a.completion_tokens
            ),
            ("Response 2", 3, 7, 2)
        );
        let a = parse_completion(r#"{"choices":[{"message":{"content":null}}]}"#, 1).unwrap();
        assert_eq!(a.reply, "");
        assert!(parse_completion(r#"{"error":"x"}"#, 1).is_err());
    }
}
