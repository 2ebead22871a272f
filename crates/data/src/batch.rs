//! Collation of tokenized sequences into tensors for causal-LM log-probs.
//!
//! Sequences are right-padded with the pad id. Position `t` predicts token `t + 1`, so
//! `labels[b, t] = input_ids[b, t + 1]` and `loss_mask[b, t] = 1` exactly where that
//! target is a response token (EOS included). Masked labels hold the pad id rather than
//! -100, so they are always valid indices for a `gather` over the vocabulary.

use crate::error::{DataError, Result};
use tch::{Kind, Tensor};

use crate::example::{PairedExample, UnpairedExample};
use crate::sequence::TokenizedSequence;
use crate::tokenize::PreferenceTokenizer;

/// `B` sequences padded to a common width `T`.
#[derive(Debug)]
pub struct SeqBatch {
    /// `[B, T]` int64.
    pub input_ids: Tensor,
    /// `[B, T]` int64, next-token targets.
    pub labels: Tensor,
    /// `[B, T]` float32, 1 where `labels` is a response token.
    pub loss_mask: Tensor,
    /// Unpadded length of each sequence.
    pub lengths: Vec<usize>,
    /// Real (non-pad) tokens in the batch.
    pub num_tokens: usize,
    /// Tokens inside the loss mask.
    pub num_response_tokens: usize,
}

impl SeqBatch {
    /// Pads to the longest sequence, or to `min_width` if that is longer
    /// (so that two batches can share one width and be concatenated).
    pub fn collate(seqs: &[&TokenizedSequence], pad_id: i64, min_width: usize) -> Result<Self> {
        if seqs.is_empty() {
            return Err(DataError::Invalid("cannot collate an empty batch".into()));
        }
        let batch = seqs.len();
        let width = seqs
            .iter()
            .map(|s| s.len())
            .max()
            .unwrap_or(0)
            .max(min_width);
        let mut input_ids = vec![pad_id; batch * width];
        let mut labels = vec![pad_id; batch * width];
        let mut loss_mask = vec![0f32; batch * width];
        for (b, seq) in seqs.iter().enumerate() {
            if !(seq.prompt_len >= 1 && seq.prompt_len < seq.len()) {
                return Err(DataError::Invalid(format!(
                    "sequence {b} has prompt_len {} of {} tokens; a response needs a preceding token to be predicted from",
                    seq.prompt_len,
                    seq.len()
                )));
            }
            let row = b * width;
            input_ids[row..row + seq.len()].copy_from_slice(&seq.input_ids);
            labels[row..row + seq.len() - 1].copy_from_slice(&seq.input_ids[1..]);
            // Positions prompt_len-1 .. len-2 predict the response tokens prompt_len .. len-1.
            loss_mask[row + seq.prompt_len - 1..row + seq.len() - 1].fill(1.0);
        }
        let shape = [batch as i64, width as i64];
        let lengths: Vec<usize> = seqs.iter().map(|s| s.len()).collect();
        Ok(Self {
            input_ids: Tensor::from_slice(&input_ids).view(shape),
            labels: Tensor::from_slice(&labels).view(shape),
            loss_mask: Tensor::from_slice(&loss_mask).view(shape),
            num_tokens: lengths.iter().sum(),
            num_response_tokens: seqs.iter().map(|s| s.len() - s.prompt_len).sum(),
            lengths,
        })
    }

    pub fn batch_size(&self) -> usize {
        self.lengths.len()
    }

    pub fn width(&self) -> usize {
        self.input_ids.size()[1] as usize
    }
}

/// `B` preference pairs. Chosen and rejected share one width, so they can be
/// concatenated into a single `[2B, T]` forward pass.
#[derive(Debug)]
pub struct PairedBatch {
    pub chosen: SeqBatch,
    pub rejected: SeqBatch,
    /// Each pair's prompt as the model sees it (after truncation), for prompt embeddings.
    pub prompts: Vec<String>,
    /// Each pair's chosen and rejected responses as written (prompt+response embeddings).
    pub chosen_texts: Vec<String>,
    pub rejected_texts: Vec<String>,
}

impl PairedBatch {
    pub fn from_examples(
        examples: &[&PairedExample],
        tokenizer: &PreferenceTokenizer,
    ) -> Result<Self> {
        let pairs = examples
            .iter()
            .map(|ex| tokenizer.tokenize_pair(ex))
            .collect::<Result<Vec<_>>>()?;
        let prompts = pairs
            .iter()
            .zip(examples)
            .map(|(pair, ex)| tokenizer.prompt_text(&pair.chosen, &ex.prompt))
            .collect::<Result<Vec<_>>>()?;
        let width = pairs
            .iter()
            .map(|p| p.chosen.len().max(p.rejected.len()))
            .max()
            .unwrap_or(0);
        let pad = tokenizer.special().pad;
        let chosen: Vec<&TokenizedSequence> = pairs.iter().map(|p| &p.chosen).collect();
        let rejected: Vec<&TokenizedSequence> = pairs.iter().map(|p| &p.rejected).collect();
        Ok(Self {
            chosen: SeqBatch::collate(&chosen, pad, width)?,
            rejected: SeqBatch::collate(&rejected, pad, width)?,
            prompts,
            chosen_texts: examples.iter().map(|ex| ex.chosen.clone()).collect(),
            rejected_texts: examples.iter().map(|ex| ex.rejected.clone()).collect(),
        })
    }

    /// Real tokens forwarded for this batch (chosen and rejected).
    pub fn num_tokens(&self) -> usize {
        self.chosen.num_tokens + self.rejected.num_tokens
    }
}

/// `B` labelled examples plus KTO's mismatched sequences for its KL reference point.
#[derive(Debug)]
pub struct UnpairedBatch {
    pub seqs: SeqBatch,
    /// `[B]` bool.
    pub desirable: Tensor,
    /// Each example's prompt as the model sees it (after truncation).
    pub prompts: Vec<String>,
    /// Each example's completion as written (prompt+response embeddings).
    pub completions: Vec<String>,
    /// Example i's prompt with the completion chosen as its KL partner.
    pub kl_seqs: SeqBatch,
}

/// KTO's KL partners within a batch: element i is paired with element (i + 1) mod n.
/// Apply it to the *global* batch before slicing per rank to keep batches independent of
/// the world size.
pub fn rotated_kl_partners<T: Clone>(batch: &[T]) -> Vec<T> {
    let mut rotated = batch.to_vec();
    if !rotated.is_empty() {
        rotated.rotate_left(1);
    }
    rotated
}

impl UnpairedBatch {
    /// `kl_completions[i]` is joined with example i's prompt for the KL estimate.
    pub fn new(
        examples: &[&UnpairedExample],
        kl_completions: &[&str],
        tokenizer: &PreferenceTokenizer,
    ) -> Result<Self> {
        if kl_completions.len() != examples.len() {
            return Err(DataError::Invalid(format!(
                "{} KL completions for {} examples",
                kl_completions.len(),
                examples.len()
            )));
        }
        let seqs = examples
            .iter()
            .map(|ex| tokenizer.tokenize_unpaired(ex))
            .collect::<Result<Vec<_>>>()?;
        let kl = examples
            .iter()
            .zip(kl_completions)
            .map(|(ex, completion)| tokenizer.tokenize(&ex.prompt, completion))
            .collect::<Result<Vec<_>>>()?;
        let prompts = seqs
            .iter()
            .zip(examples)
            .map(|(seq, ex)| tokenizer.prompt_text(seq, &ex.prompt))
            .collect::<Result<Vec<_>>>()?;
        let desirable: Vec<bool> = examples.iter().map(|ex| ex.desirable).collect();
        let pad = tokenizer.special().pad;
        Ok(Self {
            seqs: SeqBatch::collate(&seqs.iter().collect::<Vec<_>>(), pad, 0)?,
            desirable: Tensor::from_slice(&desirable).to_kind(Kind::Bool),
            prompts,
            completions: examples.iter().map(|ex| ex.completion.clone()).collect(),
            kl_seqs: SeqBatch::collate(&kl.iter().collect::<Vec<_>>(), pad, 0)?,
        })
    }

    /// KL partners from within this batch ([`rotated_kl_partners`]), as HALOs does per micro-batch.
    pub fn with_rotated_kl(
        examples: &[&UnpairedExample],
        tokenizer: &PreferenceTokenizer,
    ) -> Result<Self> {
        let completions: Vec<&str> = examples.iter().map(|ex| ex.completion.as_str()).collect();
        Self::new(examples, &rotated_kl_partners(&completions), tokenizer)
    }

    /// Real tokens forwarded for this batch (examples and KL sequences).
    pub fn num_tokens(&self) -> usize {
        self.seqs.num_tokens + self.kl_seqs.num_tokens
    }

    pub fn num_desirable(&self) -> usize {
        self.desirable.sum(Kind::Int64).int64_value(&[]) as usize
    }
}
