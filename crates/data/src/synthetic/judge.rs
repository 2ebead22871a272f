//! The programmatic judge: recovers a prompt's correct answer from its text alone.

use crate::error::{DataError, Result};

use super::chat::question_of;
use super::family::Family;

/// The family and correct answer of a suite prompt, or None if the prompt is not one.
pub fn reference_answer(prompt: &str) -> Option<(Family, String)> {
    let question = question_of(prompt)?;
    Family::ALL.into_iter().find_map(|family| {
        let task = family.task();
        task.templates().iter().find_map(|template| {
            let (before, after) = template.split_once("{}").expect("templates have a slot");
            let subject = question.strip_prefix(before)?.strip_suffix(after)?;
            task.answer(subject).map(|answer| (family, answer))
        })
    })
}

/// Whether `response` answers `prompt` correctly: exact match after trimming whitespace.
/// Errors if the prompt is not from the suite.
pub fn judge(prompt: &str, response: &str) -> Result<bool> {
    let (_, answer) = reference_answer(prompt).ok_or_else(|| DataError::NotSynthetic {
        prompt: prompt.to_string(),
    })?;
    Ok(response.trim() == answer)
}
