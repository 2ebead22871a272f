//! The config's named choices as enums, parsed once: an unknown name is a parse error
//! that lists the allowed ones, and no code re-parses a string. The TOML spelling of
//! every value is the string after `=` below.

use rpo_data::formats::DataFormat;
use serde::{Deserialize, Serialize};

/// A name that is none of a choice's values (from [`std::str::FromStr`], e.g. a flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not one of {allowed:?}")]
pub struct UnknownChoice {
    pub value: String,
    pub allowed: &'static [&'static str],
}

macro_rules! choice {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),+ $(,)? } $(default $default:ident)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value's config spelling, in order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The config spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        $(
            impl Default for $name {
                fn default() -> Self {
                    $name::$default
                }
            }
        )?

        /// Compares with a config spelling (`cfg.zero.reduce_dtype == "fp32"`).
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownChoice;
            fn from_str(s: &str) -> Result<Self, UnknownChoice> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(UnknownChoice { value: other.to_string(), allowed: Self::NAMES }),
                }
            }
        }
    };
}

choice!(
    /// `[loss] name`.
    LossName {
        Rpo = "rpo",
        Dpo = "dpo",
        Ipo = "ipo",
        Kto = "kto",
        Sft = "sft",
    }
);

choice!(
    /// `[loss] pairing` (RPO): an M×M matrix of pairs or M×N of unpaired examples.
    Pairing {
        Paired = "paired",
        Unpaired = "unpaired",
    }
);

choice!(
    /// `[loss] weighting` (RPO); see `rpo_losses::Weighting`.
    WeightingName {
        Embedding = "embedding",
        UniformPaper = "uniform-paper",
        UniformCode = "uniform-code",
        DiagonalPaper = "diagonal-paper",
        DiagonalCode = "diagonal-code",
    }
);

impl WeightingName {
    /// The diagonal weightings need an M×M matrix (paired data).
    pub fn is_diagonal(self) -> bool {
        matches!(
            self,
            WeightingName::DiagonalPaper | WeightingName::DiagonalCode
        )
    }
}

choice!(
    /// `[optim] name`.
    OptimizerName {
        /// The paper's.
        RmsProp = "rmsprop",
        AdamW = "adamw",
    }
);

choice!(
    /// `[model] dtype`, the compute dtype: "auto" is bf16 on CUDA and fp32 on the CPU.
    DtypeName {
        Auto = "auto",
        Fp32 = "fp32",
        Bf16 = "bf16",
    }
);

choice!(
    /// `[zero] reduce_dtype`: the dtype gradients accumulate over micro-batches and are
    /// summed over ranks in.
    ReduceDtype {
        /// Whatever the compute dtype (as DeepSpeed's bf16 optimizer and FSDP2 do).
        Fp32 = "fp32",
        /// Half the gradient memory and traffic, coarser sums.
        Bf16 = "bf16",
    }
    default Fp32
);

impl ReduceDtype {
    /// The gradient buffers' dtype.
    pub fn kind(self) -> tch::Kind {
        match self {
            ReduceDtype::Fp32 => tch::Kind::Float,
            ReduceDtype::Bf16 => tch::Kind::BFloat16,
        }
    }
}

choice!(
    /// `[reference] mode`: where the frozen reference lives, or "precomputed" (its
    /// log-probs read from a cache).
    ReferenceMode {
        Live = "live",
        Sharded = "sharded",
        Offload = "offload",
        Precomputed = "precomputed",
    }
);

choice!(
    /// `[data] format`: the built-in synthetic suite or a JSONL file format.
    DataFormatName {
        Synthetic = "synthetic",
        Paired = "paired",
        Unpaired = "unpaired",
        Hh = "hh",
        Tldr = "tldr",
    }
);

impl DataFormatName {
    /// The file format to read, `None` for the built-in synthetic suite.
    pub fn file_format(self) -> Option<DataFormat> {
        match self {
            DataFormatName::Synthetic => None,
            DataFormatName::Paired => Some(DataFormat::Paired),
            DataFormatName::Unpaired => Some(DataFormat::Unpaired),
            DataFormatName::Hh => Some(DataFormat::Hh),
            DataFormatName::Tldr => Some(DataFormat::Tldr),
        }
    }
}

choice!(
    /// `[embedding] model`.
    EmbedderName {
        /// A sentence-transformers model (all-MiniLM-L6-v2 by default).
        MiniLm = "minilm",
        /// Hashed words and bigrams (no model needed).
        BagOfWords = "bag-of-words",
    }
);

choice!(
    /// `[embedding] text`: what is embedded for each example.
    TextMode {
        /// The prompt: both responses of a pair share one embedding.
        Prompt = "prompt",
        /// Prompt + response, one embedding per response.
        PromptResponse = "prompt+response",
    }
);

impl TextMode {
    pub fn name(self) -> &'static str {
        self.as_str()
    }
}

choice!(
    /// `[distributed] backend`: "auto" (single process at W = 1, MPI on CPU, NCCL on
    /// CUDA) or "nccl" (NCCL even at W = 1).
    BackendName {
        Auto = "auto",
        Nccl = "nccl",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_unknown_names_list_the_allowed() {
        for name in WeightingName::NAMES {
            let w: WeightingName = name.parse().unwrap();
            assert_eq!(w.as_str(), *name);
            let toml_value: WeightingName = serde_json::from_str(&format!("{name:?}")).unwrap();
            assert_eq!(toml_value, w);
        }
        assert_eq!(
            "prompt+response".parse::<TextMode>(),
            Ok(TextMode::PromptResponse)
        );
        let e = "sgd".parse::<OptimizerName>().unwrap_err().to_string();
        assert!(
            e.contains("sgd") && e.contains("rmsprop") && e.contains("adamw"),
            "{e}"
        );
        let e = serde_json::from_str::<ReduceDtype>("\"fp16\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("fp32") && e.contains("bf16"), "{e}");
        assert_eq!(ReduceDtype::default(), "fp32");
        assert_eq!(ReduceDtype::Bf16.kind(), tch::Kind::BFloat16);
    }
}
