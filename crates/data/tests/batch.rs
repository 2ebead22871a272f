//! Collation into causal-LM tensors.

use rpo_data::synthetic::synthetic_tokenizer;
use rpo_data::{
    rotated_kl_partners, PairedBatch, PairedExample, PreferenceTokenizer, SeqBatch, SpecialTokens,
    TokenizedSequence, Truncation, UnpairedBatch, UnpairedExample,
};
use tch::Tensor;

fn seq(input_ids: &[i64], prompt_len: usize) -> TokenizedSequence {
    TokenizedSequence {
        input_ids: input_ids.to_vec(),
        prompt_len,
        prompt_truncated: false,
    }
}

fn rows_i64(t: &Tensor) -> Vec<Vec<i64>> {
    Vec::<Vec<i64>>::try_from(t).unwrap()
}

fn rows_f32(t: &Tensor) -> Vec<Vec<f32>> {
    Vec::<Vec<f32>>::try_from(t).unwrap()
}

#[test]
fn collate_pads_right_shifts_labels_and_masks_response_targets() {
    let a = seq(&[5, 6, 7, 8, 2], 2); // prompt 5 6, response 7 8 EOS
    let b = seq(&[9, 3, 2], 2); // prompt 9 3, response EOS
    let batch = SeqBatch::collate(&[&a, &b], 0, 0).unwrap();
    assert_eq!(
        rows_i64(&batch.input_ids),
        [vec![5, 6, 7, 8, 2], vec![9, 3, 2, 0, 0]]
    );
    assert_eq!(
        rows_i64(&batch.labels),
        [vec![6, 7, 8, 2, 0], vec![3, 2, 0, 0, 0]]
    );
    assert_eq!(
        rows_f32(&batch.loss_mask),
        [vec![0., 1., 1., 1., 0.], vec![0., 1., 0., 0., 0.]]
    );
    assert_eq!(batch.lengths, [5, 3]);
    assert_eq!(batch.num_tokens, 8);
    assert_eq!(batch.num_response_tokens, 4);
    assert_eq!((batch.batch_size(), batch.width()), (2, 5));
}

#[test]
fn masked_labels_are_exactly_the_response_tokens() {
    let a = seq(&[5, 6, 7, 8, 2], 3);
    let batch = SeqBatch::collate(&[&a], 0, 8).unwrap();
    assert_eq!(batch.width(), 8);
    let targets = batch
        .labels
        .masked_select(&batch.loss_mask.to_kind(tch::Kind::Bool));
    assert_eq!(Vec::<i64>::try_from(&targets).unwrap(), a.response_ids());
}

#[test]
fn a_sequence_without_response_or_prompt_is_refused() {
    assert!(SeqBatch::collate(&[&seq(&[5, 6], 2)], 0, 0).is_err());
    assert!(SeqBatch::collate(&[&seq(&[5, 6], 0)], 0, 0).is_err());
    assert!(SeqBatch::collate(&[], 0, 0).is_err());
}

fn tokenizer() -> PreferenceTokenizer {
    let tokenizer = synthetic_tokenizer().unwrap();
    let special = SpecialTokens::from_tokenizer(&tokenizer).unwrap();
    PreferenceTokenizer::new(tokenizer, special, Truncation::default()).unwrap()
}

#[test]
fn paired_batch_shares_one_width_and_keeps_prompts() {
    let tok = tokenizer();
    let pairs = [
        PairedExample {
            prompt: "Human: What is 1 + 2?\n\nAssistant:".into(),
            chosen: " 3".into(),
            rejected: " 4".into(),
        },
        PairedExample {
            prompt: "Human: Sort alphabetically: dog, cat, bee\n\nAssistant:".into(),
            chosen: " bee, cat, dog".into(),
            rejected: " cat, bee, dog, owl, yak".into(),
        },
    ];
    let batch = PairedBatch::from_examples(&pairs.iter().collect::<Vec<_>>(), &tok).unwrap();
    assert_eq!(batch.chosen.width(), batch.rejected.width());
    assert_eq!(
        batch.prompts,
        [pairs[0].prompt.clone(), pairs[1].prompt.clone()]
    );
    assert_eq!(batch.chosen_texts, [" 3", " bee, cat, dog"]);
    assert_eq!(batch.rejected_texts, [" 4", " cat, bee, dog, owl, yak"]);
    assert_eq!(
        batch.num_tokens(),
        batch.chosen.num_tokens + batch.rejected.num_tokens
    );
    let first = tok.tokenize_pair(&pairs[0]).unwrap();
    assert_eq!(batch.chosen.lengths[0], first.chosen.len());
    // " 3" is Ġ 3 EOS; " bee, cat, dog" is Ġbee , Ġcat , Ġdog EOS.
    assert_eq!(batch.chosen.num_response_tokens, 3 + 6);
}

#[test]
fn unpaired_batch_pairs_each_prompt_with_the_next_completion_for_kl() {
    let tok = tokenizer();
    let examples: Vec<UnpairedExample> = [
        ("1 + 2", " 3", true),
        ("2 + 2", " 5", false),
        ("3 + 3", " 6", true),
    ]
    .into_iter()
    .map(|(q, a, d)| UnpairedExample {
        prompt: format!("Human: What is {q}?\n\nAssistant:"),
        completion: a.into(),
        desirable: d,
    })
    .collect();
    let refs: Vec<&UnpairedExample> = examples.iter().collect();
    let batch = UnpairedBatch::with_rotated_kl(&refs, &tok).unwrap();
    assert_eq!(
        Vec::<bool>::try_from(&batch.desirable).unwrap(),
        [true, false, true]
    );
    assert_eq!(batch.num_desirable(), 2);
    assert_eq!(
        batch.completions,
        [" 3", " 5", " 6"],
        "own completions, not KL partners"
    );
    for i in 0..3 {
        let expected = tok
            .tokenize(&examples[i].prompt, &examples[(i + 1) % 3].completion)
            .unwrap();
        let row: Vec<i64> = Vec::try_from(batch.kl_seqs.input_ids.get(i as i64)).unwrap();
        assert_eq!(row[..expected.len()], expected.input_ids);
    }
    assert_eq!(
        batch.num_tokens(),
        batch.seqs.num_tokens + batch.kl_seqs.num_tokens
    );
    assert_eq!(rotated_kl_partners(&[1, 2, 3]), [2, 3, 1]);
    assert!(UnpairedBatch::new(&refs, &[" 1"], &tok).is_err());
}
