//! Truncation rules on raw token ids, and the tokenizer wrapper on the synthetic tokenizer.

use rpo_data::synthetic::synthetic_tokenizer;
use rpo_data::{
    DataFormat, PairedExample, PreferenceTokenizer, PromptKeep, SpecialTokens, Truncation,
};

const EOS: i64 = 2;
const BOS: i64 = 1;

fn ids(range: std::ops::RangeInclusive<i64>) -> Vec<i64> {
    range.collect()
}

fn truncation(max_length: usize, max_prompt_length: usize, prompt_keep: PromptKeep) -> Truncation {
    Truncation {
        max_length,
        max_prompt_length,
        prompt_keep,
    }
}

#[test]
fn short_sequences_are_untouched() {
    let t = truncation(16, 8, PromptKeep::KeepEnd);
    let seq = t.sequence(&[], &ids(10..=12), &ids(20..=22), EOS);
    assert_eq!(seq.input_ids, [10, 11, 12, 20, 21, 22, EOS]);
    assert_eq!(seq.prompt_len, 3);
    assert!(!seq.prompt_truncated);
}

#[test]
fn keep_end_keeps_the_last_prompt_tokens_and_eos_survives() {
    let t = truncation(8, 4, PromptKeep::KeepEnd);
    let seq = t.sequence(&[], &ids(10..=19), &ids(20..=29), EOS);
    assert_eq!(seq.input_ids, [16, 17, 18, 19, 20, 21, 22, EOS]);
    assert_eq!(seq.prompt_len, 4);
    assert!(seq.prompt_truncated);
    assert_eq!(seq.len(), 8);
}

#[test]
fn keep_start_keeps_the_first_prompt_tokens() {
    let t = truncation(8, 4, PromptKeep::KeepStart);
    let seq = t.sequence(&[], &ids(10..=19), &ids(20..=29), EOS);
    assert_eq!(seq.input_ids, [10, 11, 12, 13, 20, 21, 22, EOS]);
}

#[test]
fn a_long_prompt_is_kept_whole_while_the_sequence_fits() {
    // As in the reference loaders, the prompt is cut only when the whole sequence is too long.
    let t = truncation(16, 4, PromptKeep::KeepEnd);
    let seq = t.sequence(&[], &ids(10..=19), &ids(20..=21), EOS);
    assert_eq!(seq.prompt_len, 10);
    assert_eq!(seq.len(), 13);
}

#[test]
fn the_response_alone_is_cut_when_the_prompt_is_short() {
    let t = truncation(6, 4, PromptKeep::KeepEnd);
    let seq = t.sequence(&[], &ids(10..=11), &ids(20..=29), EOS);
    assert_eq!(seq.input_ids, [10, 11, 20, 21, 22, EOS]);
}

#[test]
fn eos_is_last_and_the_mask_covers_exactly_the_response() {
    for keep in [PromptKeep::KeepEnd, PromptKeep::KeepStart] {
        for (prompt_len, response_len) in [(1, 0), (3, 2), (12, 1), (5, 30), (30, 30)] {
            let t = truncation(10, 6, keep);
            let seq = t.sequence(&[BOS], &vec![7; prompt_len], &vec![9; response_len], EOS);
            assert!(seq.len() <= 10);
            assert_eq!(*seq.input_ids.last().unwrap(), EOS);
            assert_eq!(seq.input_ids[0], BOS, "BOS is never cut");
            let mask = seq.loss_mask();
            let masked: Vec<i64> = seq
                .input_ids
                .iter()
                .zip(&mask)
                .filter(|(_, m)| **m)
                .map(|(i, _)| *i)
                .collect();
            assert_eq!(masked, seq.response_ids());
            assert!(masked.iter().take(masked.len() - 1).all(|&id| id == 9));
            assert!(seq.prompt_ids()[1..].iter().all(|&id| id == 7));
        }
    }
}

#[test]
fn bos_counts_towards_the_prompt_budget() {
    let t = truncation(8, 4, PromptKeep::KeepEnd);
    let seq = t.sequence(&[BOS], &ids(10..=19), &ids(20..=29), EOS);
    assert_eq!(seq.input_ids, [BOS, 17, 18, 19, 20, 21, 22, EOS]);
}

#[test]
fn a_pair_shares_its_truncated_prompt() {
    let t = truncation(10, 4, PromptKeep::KeepEnd);
    // Alone, the short response would keep the whole prompt; paired with the long one it may not.
    let seqs = t.sequences(&[], &ids(10..=16), &[&ids(20..=21), &ids(30..=39)], EOS);
    assert_eq!(seqs[0].prompt_ids(), seqs[1].prompt_ids());
    assert_eq!(seqs[0].input_ids, [13, 14, 15, 16, 20, 21, EOS]);
    assert_eq!(seqs[1].input_ids, [13, 14, 15, 16, 30, 31, 32, 33, 34, EOS]);
}

#[test]
fn invalid_limits_are_rejected() {
    assert!(truncation(8, 8, PromptKeep::KeepEnd).validate(0).is_err());
    assert!(truncation(8, 1, PromptKeep::KeepEnd).validate(1).is_err());
    assert!(truncation(8, 7, PromptKeep::KeepEnd).validate(1).is_ok());
}

#[test]
fn per_format_defaults() {
    assert_eq!(
        Truncation::for_format(DataFormat::Hh).prompt_keep,
        PromptKeep::KeepEnd
    );
    assert_eq!(
        Truncation::for_format(DataFormat::Tldr).prompt_keep,
        PromptKeep::KeepStart
    );
    let t = Truncation::default();
    assert_eq!((t.max_length, t.max_prompt_length), (512, 256));
}

fn synthetic(truncation: Truncation) -> PreferenceTokenizer {
    let tokenizer = synthetic_tokenizer().unwrap();
    let special = SpecialTokens::from_tokenizer(&tokenizer).unwrap();
    PreferenceTokenizer::new(tokenizer, special, truncation).unwrap()
}

#[test]
fn special_tokens_of_the_synthetic_tokenizer() {
    let special = SpecialTokens::from_tokenizer(&synthetic_tokenizer().unwrap()).unwrap();
    assert_eq!(
        special,
        SpecialTokens {
            eos: 2,
            pad: 0,
            bos: Some(1),
            add_bos: true,
            stop: vec![2],
        }
    );
}

#[test]
fn prompt_and_response_are_encoded_separately() {
    let tok = synthetic(Truncation::default());
    let prompt = "Human: What is 12 + 7?\n\nAssistant:";
    let seq = tok.tokenize(prompt, " 19").unwrap();
    let expected: Vec<i64> = [
        vec![BOS],
        tok.encode(prompt).unwrap(),
        tok.encode(" 19").unwrap(),
        vec![EOS],
    ]
    .concat();
    assert_eq!(seq.input_ids, expected);
    assert_eq!(seq.prompt_len, 1 + tok.encode(prompt).unwrap().len());
    assert_eq!(tok.decode(seq.response_ids()).unwrap(), " 19</s>");
    assert_eq!(tok.prompt_text(&seq, prompt).unwrap(), prompt);
}

#[test]
fn truncated_prompt_text_is_what_the_model_sees() {
    let tok = synthetic(truncation(12, 6, PromptKeep::KeepEnd));
    let pair = PairedExample {
        prompt: "Human: Sort alphabetically: dog, cat, bee\n\nAssistant:".into(),
        chosen: " bee, cat, dog".into(),
        rejected: " cat, bee, dog".into(),
    };
    let tokenized = tok.tokenize_pair(&pair).unwrap();
    assert!(tokenized.chosen.prompt_truncated);
    assert_eq!(
        tokenized.chosen.prompt_ids(),
        tokenized.rejected.prompt_ids()
    );
    assert_eq!(tokenized.chosen.prompt_len, 6);
    let text = tok.prompt_text(&tokenized.chosen, &pair.prompt).unwrap();
    assert!(
        pair.prompt.ends_with(&text) && text.len() < pair.prompt.len(),
        "{text:?}"
    );
    assert!(text.ends_with("\n\nAssistant:"));
}

#[test]
fn generation_prompt_matches_training_prompt() {
    let tok = synthetic(Truncation::default());
    let prompt = "Human: What comes after Monday?\n\nAssistant:";
    let seq = tok.tokenize(prompt, " Tuesday").unwrap();
    assert_eq!(
        tok.encode_prompt_for_generation(prompt).unwrap(),
        seq.prompt_ids()
    );
}

#[test]
fn an_empty_prompt_is_an_error() {
    let tok = synthetic(Truncation::default());
    assert!(tok.tokenize("", " x").is_err());
}
