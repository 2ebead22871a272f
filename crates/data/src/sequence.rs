//! One tokenized prompt + response, ready to be batched.

/// `input_ids = prompt ++ response ++ [EOS]`; the first `prompt_len` ids are the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenizedSequence {
    pub input_ids: Vec<i64>,
    pub prompt_len: usize,
    /// Whether the prompt lost tokens to truncation (its text then differs from the original).
    pub prompt_truncated: bool,
}

impl TokenizedSequence {
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    pub fn prompt_ids(&self) -> &[i64] {
        &self.input_ids[..self.prompt_len]
    }

    /// The response tokens, EOS included.
    pub fn response_ids(&self) -> &[i64] {
        &self.input_ids[self.prompt_len..]
    }

    /// Per input position: true exactly on the response tokens (EOS included).
    pub fn loss_mask(&self) -> Vec<bool> {
        (0..self.len()).map(|i| i >= self.prompt_len).collect()
    }
}
