//! OpenAI summarize-from-feedback (TL;DR) comparisons:
//! `{"info": {"post", "title"?, "subreddit"?, ...}, "summaries": [{"text"}, {"text"}], "choice": 0|1}`.
//!
//! The prompt uses the query format the dataset's summaries were written for (OpenAI's
//! summarize-from-feedback, also used by TRL's TL;DR preprocessing):
//! `"SUBREDDIT: r/{subreddit}\n\nTITLE: {title}\n\nPOST: {post}\n\nTL;DR:"`, leaving out the
//! subreddit and title lines when those fields are missing or null.
//! Note: the RPO/HALOs loader (`get_tldr`) instead uses the post alone wrapped in its chat
//! tags (`human_prefix + post + assistant_prefix`), dropping subreddit and title; the
//! template above keeps the information the annotators saw.

use super::record::{FieldResult, Record};
use crate::example::PairedExample;

/// The TL;DR query for one post.
pub fn tldr_prompt(subreddit: Option<&str>, title: Option<&str>, post: &str) -> String {
    let mut prompt = String::new();
    if let Some(subreddit) = subreddit {
        prompt.push_str(&format!("SUBREDDIT: r/{subreddit}\n\n"));
    }
    if let Some(title) = title {
        prompt.push_str(&format!("TITLE: {title}\n\n"));
    }
    prompt.push_str(&format!("POST: {post}\n\nTL;DR:"));
    prompt
}

pub(crate) fn parse(record: &Record) -> FieldResult<PairedExample> {
    let info = record.object("info")?;
    let post = info.non_empty_str("post")?;
    let prompt = tldr_prompt(
        info.optional_str("subreddit")?,
        info.optional_str("title")?,
        post,
    );

    let summaries = record.objects("summaries")?;
    if summaries.len() != 2 {
        return Err(format!(
            "field `summaries`: expected 2 summaries, found {}",
            summaries.len()
        ));
    }
    let choice = record.u64("choice")?;
    if choice > 1 {
        return Err(format!("field `choice`: expected 0 or 1, found {choice}"));
    }
    let choice = choice as usize;
    Ok(PairedExample {
        prompt,
        chosen: summaries[choice].str("text")?.to_string(),
        rejected: summaries[1 - choice].str("text")?.to_string(),
    })
}
