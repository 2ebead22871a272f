# Sourced by the memory benches (save_under_budget.sh, eval_memory.sh): the 271M-parameter
# Llama (16 layers, hidden 1024, vocabulary 32000, fp32, untied), written as an HF config
# and initialised into "$OUT/start". Needs OUT and BIN set.
# Ψ = 271,090,688; the largest units are the embedding and the head, 32000 × 1024 each.
PSI=271090688
cat > "$OUT/config.json" <<'JSON'
{"architectures":["LlamaForCausalLM"],"model_type":"llama","hidden_size":1024,"intermediate_size":2816,
 "num_hidden_layers":16,"num_attention_heads":16,"num_key_value_heads":16,"vocab_size":32000,
 "max_position_embeddings":2048,"rms_norm_eps":1e-5,"rope_theta":10000.0,"tie_word_embeddings":false,
 "hidden_act":"silu","initializer_range":0.02,"torch_dtype":"float32","bos_token_id":1,"eos_token_id":2}
JSON
"$BIN" init-model --config "$OUT/config.json" --out "$OUT/start" > /dev/null 2>&1
