//! Incremental decoding against full forward passes: the KV cache, chunked
//! prefill, sliding windows past the cache, EOS handling, and bf16.

mod common;

use common::{
    greedy_without_cache, mid_sequence_eos, mistral_config, relative_error, tiny_config, token_ids,
    token_list, truncated_after,
};
use rpo_model::{generate_greedy, DecodeError, Decoder, KvCache, Llama, LlamaConfig};
use tch::{Device, Kind, Tensor};

fn model(config: &LlamaConfig) -> Llama {
    Llama::init(config, Device::Cpu, Kind::Float, 5).unwrap().0
}

/// Prompts of mixed lengths, two of them equal so that one batch holds both.
fn prompts() -> Vec<Vec<i64>> {
    [5usize, 3, 5, 1, 8]
        .iter()
        .enumerate()
        .map(|(i, &n)| token_list(n, 97, i as u64))
        .collect()
}

#[test]
fn cached_greedy_equals_greedy_by_full_forward() {
    for (name, config) in [
        ("tiny", tiny_config()),
        ("mistral window 4", mistral_config(4)),
    ] {
        let model = model(&config);
        let prompts = prompts();
        let cached = generate_greedy(&model, &prompts, 12, &[]).unwrap();
        let uncached: Vec<_> = prompts
            .iter()
            .map(|p| greedy_without_cache(&model, p, 12, None))
            .collect();
        assert_eq!(cached, uncached, "{name}");
        assert!(cached.iter().all(|tokens| tokens.len() == 12));
    }
}

#[test]
fn generation_stops_after_eos_and_includes_it() {
    let model = model(&tiny_config());
    let prompts = prompts();
    let free = generate_greedy(&model, &prompts, 12, &[]).unwrap();
    let eos = mid_sequence_eos(&free);
    let stopped = generate_greedy(&model, &prompts, 12, &[eos]).unwrap();
    let expected: Vec<_> = free
        .iter()
        .map(|tokens| truncated_after(tokens, eos))
        .collect();
    assert_eq!(stopped, expected);
    assert!(stopped.iter().any(|t| t.len() < 12) && stopped.iter().any(|t| t.len() == 12));
    let uncached: Vec<_> = prompts
        .iter()
        .map(|p| greedy_without_cache(&model, p, 12, Some(eos)))
        .collect();
    assert_eq!(stopped, uncached);
}

#[test]
fn generation_edge_cases() {
    let model = model(&tiny_config());
    assert_eq!(
        generate_greedy(&model, &prompts(), 0, &[]).unwrap(),
        vec![Vec::<i64>::new(); 5]
    );
    let error = generate_greedy(&model, &[vec![1], vec![]], 3, &[]).unwrap_err();
    assert!(
        matches!(error, DecodeError::EmptyPrompt { prompt: 1 }),
        "{error}"
    );
    let error = generate_greedy(&model, &[vec![1, 97]], 3, &[]).unwrap_err();
    assert!(
        matches!(
            error,
            DecodeError::TokenOutOfVocab {
                prompt: 0,
                token: 97,
                vocab: 97
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("97"), "{error}");
    let error = rpo_model::generate(&model, &[vec![1]], &[], 3, &[], rpo_model::Decoding::Greedy)
        .unwrap_err();
    assert!(
        matches!(error, DecodeError::IdCount { ids: 0, prompts: 1 }),
        "{error}"
    );
    assert!(generate_greedy(&model, &[], 3, &[]).unwrap().is_empty());
}

/// A decoder whose forwards fail, as a sharded one's collectives can.
struct Failing(Llama);

#[derive(Debug, thiserror::Error)]
#[error("all-gather of unit layers.0")]
struct CollectiveFailed(#[source] std::io::Error);

impl Decoder for Failing {
    fn config(&self) -> &LlamaConfig {
        self.0.config()
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn forward_cached(&self, _: &Tensor, _: &mut KvCache) -> Result<Tensor, DecodeError> {
        Err(DecodeError::decoder(CollectiveFailed(
            std::io::Error::other("connection reset"),
        )))
    }
}

#[test]
fn a_decoders_own_error_comes_back_whole() {
    let error = generate_greedy(&Failing(model(&tiny_config())), &[vec![1]], 3, &[]).unwrap_err();
    let DecodeError::Decoder(inner) = &error else {
        panic!("not the decoder's error: {error}");
    };
    assert!(inner.downcast_ref::<CollectiveFailed>().is_some());
    // Its message and causes are the error's own (as `{:#}` prints them).
    let mut chain = vec![error.to_string()];
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push(cause.to_string());
        source = cause.source();
    }
    assert_eq!(chain, ["all-gather of unit layers.0", "connection reset"]);
}

#[test]
fn chunked_prefill_through_the_cache_equals_one_forward() {
    // Chunks after the first run with past > 0 and several queries: the explicit-mask path.
    for (name, config) in [
        ("tiny", tiny_config()),
        ("mistral window 3", mistral_config(3)),
    ] {
        let model = model(&config);
        let ids = token_ids(2, 9, config.vocab_size, 3);
        let full = tch::no_grad(|| model.forward(&ids));
        let mut cache = model.new_cache();
        let chunks: Vec<Tensor> = [(0, 4), (4, 3), (7, 1), (8, 1)]
            .iter()
            .map(|&(start, len)| {
                tch::no_grad(|| model.forward_cached(&ids.narrow(1, start, len), &mut cache))
            })
            .collect();
        assert_eq!(cache.len(), 9);
        let error = relative_error(&Tensor::cat(&chunks, 1), &full);
        assert!(error < 1e-5, "{name}: chunked prefill differs by {error:e}");
    }
}

#[test]
fn forward_composes_the_units() {
    let model = model(&mistral_config(4));
    let ids = token_ids(2, 7, 97, 9);
    let angles = model.rotary(0, 7);
    let hidden = model
        .layers()
        .iter()
        .fold(model.embed(&ids), |x, layer| layer.forward(&x, &angles));
    assert!(model.head(&hidden).equal(&model.forward(&ids)));
    assert_eq!(model.forward(&ids).size(), [2, 7, 97]);
}

#[test]
fn bf16_forward_is_close_to_fp32() {
    let config = tiny_config();
    let fp32 = Llama::init(&config, Device::Cpu, Kind::Float, 5).unwrap().0;
    let bf16 = Llama::init(&config, Device::Cpu, Kind::BFloat16, 5)
        .unwrap()
        .0;
    let ids = token_ids(2, 8, config.vocab_size, 2);
    let (a, b) = tch::no_grad(|| (bf16.forward(&ids), fp32.forward(&ids)));
    assert_eq!(a.kind(), Kind::BFloat16);
    let error = relative_error(&a, &b);
    assert!(error < 5e-2, "bf16 logits differ from fp32 by {error:e}");
}

#[test]
fn seeded_init_is_reproducible_and_follows_the_init_scale() {
    let config = tiny_config();
    let (_, a) = Llama::init(&config, Device::Cpu, Kind::Float, 5).unwrap();
    let (_, b) = Llama::init(&config, Device::Cpu, Kind::Float, 5).unwrap();
    let (a, b) = (a.variables(), b.variables());
    assert!(a.iter().all(|(name, t)| t.equal(&b[name])));
    let std = a["model.layers.0.mlp.up_proj.weight"]
        .std(true)
        .double_value(&[]);
    assert!((std - config.initializer_range).abs() < 0.01, "std {std}");
    assert!(a["model.norm.weight"].equal(&Tensor::ones([64], (Kind::Float, Device::Cpu))));
}

fn sample(t: f64, top_p: f64, seed: u64) -> rpo_model::Decoding {
    rpo_model::Decoding::Sample {
        temperature: t,
        top_p,
        seed,
    }
}

#[test]
fn sampling_is_reproducible_per_prompt_whatever_the_batch() {
    let model = model(&tiny_config());
    let prompts = prompts();
    let ids: Vec<u64> = (0..prompts.len() as u64).collect();
    let all = rpo_model::generate(&model, &prompts, &ids, 10, &[], sample(1.0, 0.9, 7)).unwrap();
    let again = rpo_model::generate(&model, &prompts, &ids, 10, &[], sample(1.0, 0.9, 7)).unwrap();
    assert_eq!(all, again);
    // Prompt 2 alone (as another rank would hold it) draws the same continuation.
    let alone = rpo_model::generate(
        &model,
        &prompts[2..3],
        &ids[2..3],
        10,
        &[],
        sample(1.0, 0.9, 7),
    )
    .unwrap();
    assert_eq!(alone[0], all[2]);
    let other_seed =
        rpo_model::generate(&model, &prompts, &ids, 10, &[], sample(1.0, 0.9, 8)).unwrap();
    assert_ne!(all, other_seed, "the seed changes the draws");
    // A nucleus of (almost) nothing keeps only the most likely token: greedy.
    let greedy = generate_greedy(&model, &prompts, 10, &[]).unwrap();
    let nucleus =
        rpo_model::generate(&model, &prompts, &ids, 10, &[], sample(1.0, 1e-9, 3)).unwrap();
    assert_eq!(nucleus, greedy);
    let error =
        rpo_model::generate(&model, &prompts, &ids, 10, &[], sample(0.0, 1.0, 3)).unwrap_err();
    assert!(matches!(error, DecodeError::Sampling { temperature, .. } if temperature == 0.0));
}

#[test]
fn sampled_tokens_follow_the_temperature_softmax() {
    // One decoding step from one prompt, many streams: the empirical distribution of the
    // first token matches softmax(logits / T), and is measurably farther from the softmax
    // at another temperature (so the check can fail).
    let model = model(&tiny_config());
    let prompt = token_list(4, 97, 11);
    let logits = tch::no_grad(|| model.forward(&Tensor::from_slice(&prompt).view([1, -1])));
    let at = |t: f64| {
        let p = (logits.select(1, -1).get(0).to_kind(Kind::Double) / t).softmax(-1, Kind::Double);
        Vec::<f64>::try_from(&p).unwrap()
    };
    let n = 20000;
    let mut counts = vec![0usize; 97];
    let prompts: Vec<Vec<i64>> = vec![prompt; n];
    let ids: Vec<u64> = (0..n as u64).collect();
    for tokens in rpo_model::generate(&model, &prompts, &ids, 1, &[], sample(0.05, 1.0, 1)).unwrap()
    {
        counts[tokens[0] as usize] += 1;
    }
    let tv = |probs: &[f64]| {
        probs
            .iter()
            .zip(&counts)
            .map(|(p, &c)| (p - c as f64 / n as f64).abs())
            .sum::<f64>()
            / 2.0
    };
    let (right, wrong) = (tv(&at(0.05)), tv(&at(0.1)));
    assert!(
        right < 0.03,
        "total variation {right} from softmax(logits / 0.05)"
    );
    assert!(
        wrong > 2.0 * right,
        "T = 0.1 fits as well: {wrong} vs {right}"
    );
}
