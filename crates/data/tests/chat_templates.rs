//! Special tokens, chat templates and conversational records against transformers (and
//! TRL's conventions, written out in tests/peers/chat_template_peer.py), on tokenizer
//! folders built here in the shapes of Llama-2, Llama-3-Instruct, Mistral-Instruct,
//! Qwen2-Instruct and Gemma: own small vocabularies and own template texts with the
//! same Jinja features (loops over messages, roles, add_generation_prompt,
//! raise_exception, bos/eos variables, strip/trim, namespace, loop controls, tojson,
//! strftime_now) and the same ways of naming special tokens (tokenizer_config.json with
//! or without added_tokens_decoder, special_tokens_map.json, chat_template.jinja,
//! generation_config.json with several EOS ids).

use std::path::{Path, PathBuf};

use rpo_data::conversation::{paired_example, unpaired_example, Turns};
use rpo_data::tokenizer_training::{bos_post_processor, train_tokenizer};
use rpo_data::{DataError, PreferenceTokenizer, Truncation};
use serde_json::{json, Value};
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{AddedToken, Tokenizer};

const LLAMA2_TEMPLATE: &str = "{% if messages[0]['role'] == 'system' %}{% set rest = messages[1:] %}{% set system = messages[0]['content'] %}{% else %}{% set rest = messages %}{% set system = false %}{% endif %}{% for message in rest %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Turns must go user, assistant, user, ...') }}{% endif %}{% if loop.index0 == 0 and system != false %}{% set text = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set text = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + text.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' ' + text.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/// Multi-line, so trim_blocks, lstrip_blocks and `{%-` matter.
const LLAMA3_TEMPLATE: &str = "{{ bos_token }}
{%- set year = strftime_now('%Y') %}
{% for message in messages %}
    {% if loop.first and message['role'] == 'system' %}
{{ '<|start_header_id|>system<|end_header_id|>\\n\\nYear: ' + year + '\\n' + message['content'] | trim + '<|eot_id|>' }}
    {%- elif message['role'] in ['user', 'assistant'] %}
{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
    {%- else %}
{{ raise_exception('Unknown role: ' + message['role']) }}
    {%- endif %}
{% endfor %}
{% if add_generation_prompt %}
{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}";

const MISTRAL_TEMPLATE: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Roles must alternate user/assistant') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}{% else %}{{ raise_exception('Only user and assistant roles are supported') }}{% endif %}{% endfor %}";

const QWEN2_TEMPLATE: &str = "{% set ns = namespace(has_system=false) %}{% for message in messages %}{% if message['role'] == 'system' %}{% set ns.has_system = true %}{% endif %}{% endfor %}{% if not ns.has_system %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}{% for message in messages %}{% if message['role'] == 'ignored' %}{% continue %}{% endif %}{% if message['role'] == 'tool' %}{{ '<|im_start|>user\\n<tool_response>' + message['content'] | tojson + '</tool_response><|im_end|>\\n' }}{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const GEMMA_TEMPLATE: &str = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}";

/// Words of every text below, so the small BPE vocabulary covers them well.
const CORPUS: &[&str] = &[
    "What is two plus two? Four. Five. Name a colour. Blue. Another one? Red. Green.",
    "You answer briefly. Say hi. Hi! Question: what is two plus two?\nAnswer:",
    "Find the weather in café <Paris> today. It is sunny. And tomorrow? Rain.",
];

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_string_pretty(value).unwrap()).unwrap();
}

fn base_tokenizer(specials: &[&str]) -> Tokenizer {
    let mut tok = train_tokenizer(CORPUS.iter().copied(), 300).unwrap();
    let added: Vec<AddedToken> = specials
        .iter()
        .map(|t| AddedToken::from(t.to_string(), true))
        .collect();
    tok.add_special_tokens(&added);
    tok
}

fn id(tok: &Tokenizer, token: &str) -> u32 {
    tok.token_to_id(token).unwrap()
}

/// transformers' serialisation of an AddedToken in tokenizer_config.json.
fn added_token(content: &str) -> Value {
    json!({"__type": "AddedToken", "content": content, "lstrip": false, "normalized": false,
           "rstrip": false, "single_word": false, "special": true})
}

fn added_tokens_decoder(tok: &Tokenizer) -> Value {
    let mut map = serde_json::Map::new();
    for (id, t) in tok.get_added_tokens_decoder() {
        map.insert(
            id.to_string(),
            json!({"content": t.content, "lstrip": false, "normalized": false,
                   "rstrip": false, "single_word": false, "special": t.special}),
        );
    }
    Value::Object(map)
}

fn save(dir: &Path, tok: &Tokenizer) {
    std::fs::create_dir_all(dir).unwrap();
    tok.save(dir.join("tokenizer.json"), true).unwrap();
}

/// Folders shaped like five model families' tokenizers.
fn build_fixtures(root: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();

    // Llama-2: `<s>` added by the post-processor, AddedToken objects in the config, no
    // PAD, a template that writes `bos_token` before every user turn.
    let dir = root.join("llama-2");
    let mut tok = base_tokenizer(&["<unk>"]);
    let bos = id(&tok, "<s>");
    tok.with_post_processor(Some(bos_post_processor("<s>", bos).unwrap()));
    save(&dir, &tok);
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": true,
                "add_eos_token": false, "bos_token": added_token("<s>"),
                "eos_token": added_token("</s>"), "unk_token": added_token("<unk>"),
                "pad_token": null, "chat_template": LLAMA2_TEMPLATE}),
    );
    write_json(
        &dir.join("generation_config.json"),
        &json!({"bos_token_id": 1, "eos_token_id": 2}),
    );
    out.push(("llama-2", dir));

    // Llama-3-Instruct: its own BOS, EOS `<|eot_id|>` (not `<|end_of_text|>`), and
    // generation stops at either.
    let dir = root.join("llama-3-instruct");
    let mut tok = base_tokenizer(&[
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eot_id|>",
    ]);
    let bos = id(&tok, "<|begin_of_text|>");
    tok.with_post_processor(Some(bos_post_processor("<|begin_of_text|>", bos).unwrap()));
    save(&dir, &tok);
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"tokenizer_class": "PreTrainedTokenizerFast",
                "added_tokens_decoder": added_tokens_decoder(&tok),
                "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                "chat_template": LLAMA3_TEMPLATE, "model_max_length": 1024}),
    );
    write_json(
        &dir.join("generation_config.json"),
        &json!({"bos_token_id": bos, "eos_token_id": [id(&tok, "<|end_of_text|>"), id(&tok, "<|eot_id|>")]}),
    );
    out.push(("llama-3-instruct", dir));

    // Mistral-Instruct: tokens named only by special_tokens_map.json (the config has no
    // added_tokens_decoder, so transformers reads it), the template in
    // chat_template.jinja, which wins over a stale one in the config.
    let dir = root.join("mistral-instruct");
    let mut tok = base_tokenizer(&["<unk>"]);
    let bos = id(&tok, "<s>");
    tok.with_post_processor(Some(bos_post_processor("<s>", bos).unwrap()));
    save(&dir, &tok);
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"tokenizer_class": "PreTrainedTokenizerFast", "add_bos_token": true,
                "chat_template": "STALE {{ messages }}"}),
    );
    write_json(
        &dir.join("special_tokens_map.json"),
        &json!({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}),
    );
    std::fs::write(dir.join("chat_template.jinja"), MISTRAL_TEMPLATE).unwrap();
    out.push(("mistral-instruct", dir));

    // Qwen2-Instruct: no BOS at all, EOS `<|im_end|>`, PAD `<|endoftext|>`, no
    // post-processor (and add_bos_token false).
    let dir = root.join("qwen2-instruct");
    let mut tok = base_tokenizer(&["<|endoftext|>", "<|im_start|>", "<|im_end|>"]);
    tok.with_post_processor(None::<PostProcessorWrapper>);
    save(&dir, &tok);
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"tokenizer_class": "PreTrainedTokenizerFast",
                "added_tokens_decoder": added_tokens_decoder(&tok), "add_bos_token": false,
                "bos_token": null, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
                "chat_template": QWEN2_TEMPLATE}),
    );
    write_json(
        &dir.join("generation_config.json"),
        &json!({"eos_token_id": [id(&tok, "<|im_end|>"), id(&tok, "<|endoftext|>")], "pad_token_id": id(&tok, "<|endoftext|>")}),
    );
    out.push(("qwen2-instruct", dir));

    // Gemma: `<bos>`/`<eos>`/`<pad>`; the config lists added_tokens_decoder, so a
    // special_tokens_map.json naming another EOS is ignored (as transformers does).
    let dir = root.join("gemma");
    let mut tok = base_tokenizer(&["<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"]);
    let bos = id(&tok, "<bos>");
    tok.with_post_processor(Some(bos_post_processor("<bos>", bos).unwrap()));
    save(&dir, &tok);
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({"tokenizer_class": "PreTrainedTokenizerFast",
                "added_tokens_decoder": added_tokens_decoder(&tok),
                "bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
                "chat_template": GEMMA_TEMPLATE}),
    );
    write_json(
        &dir.join("special_tokens_map.json"),
        &json!({"bos_token": "<bos>", "eos_token": "<end_of_turn>", "pad_token": "<pad>"}),
    );
    write_json(
        &dir.join("generation_config.json"),
        &json!({"eos_token_id": [id(&tok, "<eos>"), id(&tok, "<end_of_turn>")]}),
    );
    out.push(("gemma", dir));
    out
}

fn msg(role: &str, content: &str) -> Value {
    json!({"role": role, "content": content})
}

/// Records every folder gets: conversational paired (one turn, several turns with a
/// system message, a tool message), conversational unpaired, plain text.
fn records(bos_text: Option<&str>) -> Vec<Value> {
    let mut r = vec![
        json!({"prompt": [msg("user", "What is two plus two?")],
               "chosen": [msg("assistant", "Four.")], "rejected": [msg("assistant", "Five.")]}),
        json!({"prompt": [msg("system", "You answer briefly."), msg("user", "Name a colour."),
                          msg("assistant", "Blue."), msg("user", "Another one?")],
               "chosen": [msg("assistant", "  Red. ")], "rejected": [msg("assistant", "Green")]}),
        json!({"prompt": [msg("user", "Find the weather in café <Paris>."),
                          msg("tool", "It is \"sunny\" today."), msg("user", "And tomorrow?")],
               "chosen": [msg("assistant", "Rain.")], "rejected": [msg("assistant", "Sunny.")]}),
        json!({"prompt": [msg("user", "Say hi.")], "completion": [msg("assistant", "Hi!")],
               "label": true}),
        json!({"prompt": "Question: what is two plus two?\nAnswer:", "chosen": " Four.",
               "rejected": " Five."}),
    ];
    if let Some(bos) = bos_text {
        // A plain prompt that already starts with BOS gets no second one.
        r.push(
            json!({"prompt": format!("{bos}Question: what is two plus two?\nAnswer:"),
                      "chosen": " Four.", "rejected": " Five."}),
        );
    }
    r
}

fn turns(v: &Value, key: &str) -> Turns {
    Turns::parse(&v[key], key).unwrap()
}

/// rpo-shard's texts and ids for a record, or its error.
fn ours(
    tok: &PreferenceTokenizer,
    record: &Value,
) -> Result<(String, Vec<String>, Vec<Vec<i64>>, usize), String> {
    let chat = tok.chat_template();
    if record.get("chosen").is_some() {
        let ex = paired_example(
            turns(record, "prompt"),
            turns(record, "chosen"),
            turns(record, "rejected"),
            chat,
        )?;
        let pair = tok.tokenize_pair(&ex).map_err(|e| format!("{e:#}"))?;
        Ok((
            ex.prompt,
            vec![ex.chosen, ex.rejected],
            vec![pair.chosen.input_ids, pair.rejected.input_ids],
            pair.chosen.prompt_len,
        ))
    } else {
        let ex = unpaired_example(
            turns(record, "prompt"),
            turns(record, "completion"),
            true,
            chat,
        )?;
        let seq = tok.tokenize_unpaired(&ex).map_err(|e| format!("{e:#}"))?;
        Ok((
            ex.prompt,
            vec![ex.completion],
            vec![seq.input_ids],
            seq.prompt_len,
        ))
    }
}

fn loaded(dir: &Path) -> PreferenceTokenizer {
    let truncation = Truncation {
        max_length: 4096,
        max_prompt_length: 2048,
        ..Truncation::default()
    };
    PreferenceTokenizer::from_file(dir.join("tokenizer.json"), truncation).unwrap()
}

fn token_text(tok: &PreferenceTokenizer, id: Option<i64>) -> String {
    id.and_then(|i| tok.tokenizer().id_to_token(i as u32))
        .unwrap_or_else(|| "—".into())
}

#[test]
fn special_tokens_templates_and_ids_match_transformers_and_trl() {
    let root = tempfile::tempdir().unwrap();
    let fixtures = build_fixtures(root.path());
    let mut spec_cases = Vec::new();
    let mut our_results = Vec::new();
    let mut table = vec![
        "| shape | BOS (rpo-shard / transformers) | BOS added | EOS | PAD | generation stops at | template |".to_string(),
        "|---|---|---|---|---|---|---|".to_string(),
    ];
    let tokenizers: Vec<PreferenceTokenizer> = fixtures.iter().map(|(_, d)| loaded(d)).collect();
    for ((name, _), tok) in fixtures.iter().zip(&tokenizers) {
        let bos_text = tok.special().bos.map(|b| token_text(tok, Some(b)));
        for record in records(bos_text.as_deref()) {
            our_results.push((*name, record.clone(), ours(tok, &record)));
            let mut case = record.clone();
            case["folder"] = json!(name);
            spec_cases.push(case);
        }
    }
    let folders: serde_json::Map<String, Value> = fixtures
        .iter()
        .map(|(n, d)| (n.to_string(), json!(d)))
        .collect();
    let spec_path = root.path().join("cases.json");
    write_json(
        &spec_path,
        &json!({"folders": folders, "cases": spec_cases}),
    );
    let peer = rpo_peer::run_json("chat_template_peer.py", &[spec_path.to_str().unwrap()]);

    for ((name, _), tok) in fixtures.iter().zip(&tokenizers) {
        let t = &peer["folders"][name];
        let s = tok.special();
        assert_eq!(s.bos, t["bos_token_id"].as_i64(), "{name}: BOS");
        assert_eq!(s.eos, t["eos_token_id"].as_i64().unwrap(), "{name}: EOS");
        let pad = t["pad_token_id"].as_i64().unwrap_or(s.eos);
        assert_eq!(s.pad, pad, "{name}: PAD (EOS when the folder names none)");
        assert_eq!(
            s.add_bos,
            t["adds_bos"].as_bool().unwrap(),
            "{name}: BOS added"
        );
        let mut theirs: Vec<i64> = t["generation_eos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .chain([s.eos])
            .collect();
        theirs.sort();
        theirs.dedup();
        let mut stop = s.stop.clone();
        stop.sort();
        assert_eq!(stop, theirs, "{name}: generation stops");
        let template = tok.chat_template().is_some();
        assert!(
            template && t["chat_template"].is_string(),
            "{name}: chat template"
        );
        let stops: Vec<String> = s.stop.iter().map(|&i| token_text(tok, Some(i))).collect();
        table.push(format!(
            "| {name} | `{}` / `{}` | {} / {} | `{}` / `{}` | `{}` / `{}` | {} / {} | yes / yes |",
            token_text(tok, s.bos),
            t["bos_token"].as_str().unwrap_or("—"),
            s.add_bos,
            t["adds_bos"],
            token_text(tok, Some(s.eos)),
            t["eos_token"].as_str().unwrap(),
            token_text(tok, Some(s.pad)),
            t["pad_token"].as_str().unwrap_or("— (EOS)"),
            stops
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(" "),
            t["generation_eos"],
        ));
    }

    let mut errors = 0;
    for ((name, record, ours), theirs) in our_results.iter().zip(peer["cases"].as_array().unwrap())
    {
        let what = format!("{name}: {record}");
        match (ours, theirs["error"].as_str()) {
            (Err(e), Some(msg)) => {
                errors += 1;
                assert!(
                    e.contains(msg),
                    "{what}: our error {e:?} lacks transformers' {msg:?}"
                );
            }
            (Ok(_), Some(msg)) => panic!("{what}: transformers fails ({msg}), rpo-shard does not"),
            (Err(e), None) => panic!("{what}: rpo-shard fails ({e}), transformers does not"),
            (Ok((prompt, responses, ids, prompt_len)), None) => {
                assert_eq!(
                    prompt,
                    theirs["prompt"].as_str().unwrap(),
                    "{what}: prompt text"
                );
                let their_responses: Vec<&str> = theirs["responses"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r.as_str().unwrap())
                    .collect();
                assert_eq!(responses, &their_responses, "{what}: response texts");
                let their_ids: Vec<Vec<i64>> =
                    serde_json::from_value(theirs["ids"].clone()).unwrap();
                assert_eq!(ids, &their_ids, "{what}: token ids");
                assert_eq!(
                    *prompt_len as i64,
                    theirs["prompt_len"].as_i64().unwrap(),
                    "{what}: prompt length"
                );
                if let Some(full) = theirs["full"].as_str() {
                    // The whole conversation, rendered without the generation prompt.
                    let tok = &tokenizers[fixtures.iter().position(|(n, _)| n == name).unwrap()];
                    let key = if record.get("chosen").is_some() {
                        "chosen"
                    } else {
                        "completion"
                    };
                    let messages: Vec<rpo_data::Message> = serde_json::from_value(Value::Array(
                        record["prompt"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .chain(record[key].as_array().unwrap())
                            .cloned()
                            .collect(),
                    ))
                    .unwrap();
                    let rendered = tok
                        .chat_template()
                        .unwrap()
                        .render(&messages, false)
                        .unwrap();
                    assert_eq!(rendered, full, "{what}: rendered conversation");
                }
            }
        }
    }
    // The shapes that refuse a system or tool turn did raise (and with the same message).
    assert!(errors >= 4, "only {errors} records raised");
    eprintln!("{}", table.join("\n"));
}

#[test]
fn conversational_data_without_a_template_is_refused_by_name() {
    let e = paired_example(
        Turns::parse(&json!([msg("user", "Hi")]), "prompt").unwrap(),
        Turns::parse(&json!([msg("assistant", "Hello")]), "chosen").unwrap(),
        Turns::parse(&json!([msg("assistant", "Go away")]), "rejected").unwrap(),
        None,
    )
    .unwrap_err();
    assert!(e.contains("chat template"), "{e}");
    let e = Turns::parse(&json!([{"role": "user"}]), "prompt").unwrap_err();
    assert!(e.contains("prompt[0]"), "{e}");
}

#[test]
fn config_overrides_replace_what_the_folder_says() {
    let root = tempfile::tempdir().unwrap();
    let fixtures = build_fixtures(root.path());
    let llama3 = &fixtures[1].1;
    let overrides = rpo_data::TokenOverrides {
        bos: None,
        eos: Some("<|end_of_text|>".into()),
        add_bos: Some(false),
    };
    let tok = PreferenceTokenizer::from_file_with(
        llama3.join("tokenizer.json"),
        &overrides,
        Truncation::default(),
    )
    .unwrap();
    let t = tok.tokenizer();
    assert_eq!(
        tok.special().eos,
        t.token_to_id("<|end_of_text|>").unwrap() as i64
    );
    assert!(!tok.special().add_bos);
    let seq = tok.tokenize("Say hi.", " Hi!").unwrap();
    assert_ne!(
        seq.input_ids[0],
        t.token_to_id("<|begin_of_text|>").unwrap() as i64
    );
    // An override that names no token is an error naming the key.
    let bad = rpo_data::TokenOverrides {
        eos: Some("<nope>".into()),
        ..Default::default()
    };
    let e = PreferenceTokenizer::from_file_with(
        llama3.join("tokenizer.json"),
        &bad,
        Truncation::default(),
    )
    .err()
    .expect("an unknown EOS is refused");
    // Named with the tokenizer it was loading, the kind a caller acts on underneath.
    match &e {
        DataError::InTokenizer { path, source } => {
            assert!(path.ends_with("tokenizer.json"), "{path:?}");
            assert!(
                matches!(&**source, DataError::SpecialTokens(m) if m.contains("[tokenizer] eos")),
                "{source}"
            );
        }
        other => panic!("expected DataError::InTokenizer, got {other:?}"),
    }
}

#[test]
fn conversational_and_plain_jsonl_records_read_through_the_template() {
    let root = tempfile::tempdir().unwrap();
    let fixtures = build_fixtures(root.path());
    let tok = loaded(&fixtures[3].1); // qwen2-instruct
    let paired: Vec<Value> = records(None)
        .into_iter()
        .filter(|r| r.get("chosen").is_some())
        .collect();
    let path = root.path().join("pairs.jsonl");
    let text: String = paired.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, text).unwrap();
    let ds = rpo_data::read_dataset_with(
        &path,
        rpo_data::DataFormat::Paired,
        &rpo_data::ReadOptions {
            on_malformed: rpo_data::OnMalformed::Error,
            columns: &rpo_data::ColumnMap::default(),
            chat: tok.chat_template(),
        },
    )
    .unwrap();
    let expected: Vec<rpo_data::PairedExample> = paired
        .iter()
        .map(|r| {
            paired_example(
                turns(r, "prompt"),
                turns(r, "chosen"),
                turns(r, "rejected"),
                tok.chat_template(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(ds.paired().unwrap(), expected.as_slice());
    assert!(expected[0].prompt.ends_with("<|im_start|>assistant\n"));
    assert_eq!(expected[0].chosen, "Four.<|im_end|>\n");
    // Without a template, message lists stay messages (training refuses them by name,
    // see data_source::as_text), so this file, which mixes them with plain records, is
    // refused at the first plain one.
    let e = rpo_data::read_dataset(
        &path,
        rpo_data::DataFormat::Paired,
        rpo_data::OnMalformed::Error,
    )
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("pairs.jsonl:4: plain text among conversational records"),
        "{e:#}"
    );

    let path = root.path().join("unpaired.jsonl");
    std::fs::write(
        &path,
        format!("{}\n", json!({"prompt": [msg("user", "Say hi.")], "completion": [msg("assistant", "Hi!")], "label": false})),
    )
    .unwrap();
    let ds = rpo_data::read_dataset_with(
        &path,
        rpo_data::DataFormat::Unpaired,
        &rpo_data::ReadOptions {
            on_malformed: rpo_data::OnMalformed::Error,
            columns: &rpo_data::ColumnMap::default(),
            chat: tok.chat_template(),
        },
    )
    .unwrap();
    let rpo_data::Examples::Unpaired(u) = &ds.examples else {
        panic!("unpaired")
    };
    assert_eq!(u[0].completion, "Hi!<|im_end|>\n");
    assert!(!u[0].desirable);
}
