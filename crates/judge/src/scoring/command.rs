//! Any external program as the judge: JSONL samples on its stdin, one score a line on
//! its stdout.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Sample, Score, Scorer};
use crate::error::{JudgeError, Result};

/// Runs `sh -c COMMAND` once for all samples. It reads one JSON object a line
/// (`{prompt, response, …the prompt record's fields}`) and must write exactly one line
/// per sample, in order: a number, or a JSON object `{"score": x}` (optionally with
/// `"label": bool`, which then overrides `score ≥ threshold`). A non-zero exit, a
/// wrong number of lines, an unreadable line or running past `timeout` is an error that
/// says which, with the end of the program's stderr.
pub struct CommandScorer {
    pub command: String,
    pub threshold: f64,
    pub timeout: Duration,
}

fn parse_line(line: &str, threshold: f64) -> Option<Score> {
    let line = line.trim();
    if let Ok(x) = line.parse::<f64>() {
        return x.is_finite().then(|| Score::thresholded(x, threshold));
    }
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let score = v.get("score")?.as_f64().filter(|x| x.is_finite())?;
    let label = match v.get("label") {
        None => score >= threshold,
        Some(l) => l.as_bool()?,
    };
    Some(Score { score, label })
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

impl Scorer for CommandScorer {
    fn name(&self) -> &'static str {
        "command"
    }

    fn score(&self, samples: &[Sample]) -> Result<Vec<Score>> {
        let mut input = String::new();
        for s in samples {
            input.push_str(&serde_json::to_string(s)?);
            input.push('\n');
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| JudgeError::CommandStart {
                command: self.command.clone(),
                source,
            })?;
        // Feed stdin and drain stdout/stderr on threads, so a program that writes before
        // it has read everything cannot deadlock against us.
        let mut stdin = child.stdin.take().expect("piped");
        let writer = std::thread::spawn(move || {
            // A program that exits without reading is reported by its status below.
            let _ = stdin.write_all(input.as_bytes());
        });
        let mut stdout = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            stdout.read_to_end(&mut buf).map(|_| buf)
        });
        let mut stderr = child.stderr.take().expect("piped");
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if start.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(JudgeError::CommandTimeout {
                    command: self.command.clone(),
                    timeout: self.timeout,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = writer.join();
        let out = reader.join().expect("reader thread")?;
        let err = err_reader.join().expect("stderr thread");
        if !status.success() {
            return Err(JudgeError::CommandFailed {
                command: self.command.clone(),
                status,
                stderr: tail(&err),
            });
        }
        let text = String::from_utf8_lossy(&out);
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.len() != samples.len() {
            return Err(JudgeError::CommandLineCount {
                command: self.command.clone(),
                lines: lines.len(),
                samples: samples.len(),
            });
        }
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                parse_line(line, self.threshold).ok_or_else(|| JudgeError::CommandOutput {
                    command: self.command.clone(),
                    line: i + 1,
                    text: line.to_string(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_numbers_or_objects() {
        assert_eq!(
            parse_line(" 0.75 ", 0.5),
            Some(Score {
                score: 0.75,
                label: true
            })
        );
        assert_eq!(
            parse_line("0.25", 0.5),
            Some(Score {
                score: 0.25,
                label: false
            })
        );
        assert_eq!(
            parse_line(r#"{"score": 0.1, "label": true}"#, 0.5),
            Some(Score {
                score: 0.1,
                label: true
            })
        );
        assert_eq!(parse_line("NaN", 0.5), None);
        assert_eq!(parse_line("yes", 0.5), None);
        assert_eq!(parse_line(r#"{"label": true}"#, 0.5), None);
    }
}
