//! The memory planner against measurement: for every rank of every run recorded by
//! `benches/zero_memory.sh` (docs/bench-zero-memory.jsonl: a 271M Llama, fp32, RMSprop,
//! stages 0–3 on 1, 2 and 4 ranks), the plan's padded Ψ is the one the run had, its state
//! equals the bytes the state tensors held, and it is within 10 % of how much the
//! process's resident memory grew from before the model to after the first step.

use rpo_model::preset;
use rpo_zero::plan::{MemoryPlan, PlanInputs, ReferencePlan};
use rpo_zero::ZeroStage;

#[test]
fn plan_matches_the_measured_per_rank_state_of_real_runs() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/bench-zero-memory.jsonl"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let mut config = preset("small").unwrap();
    config.hidden_size = 1024;
    config.intermediate_size = 2816;
    config.num_hidden_layers = 16;
    config.num_attention_heads = 16;
    config.num_key_value_heads = 16;
    config.vocab_size = 32000;
    config.tie_word_embeddings = false;
    let mib = (1u64 << 20) as f64;
    let mut checked = 0;
    for line in text.lines() {
        let run: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(run["dtype"], "fp32");
        let world = run["ranks"].as_u64().unwrap() as usize;
        let stage = ZeroStage::try_from(run["stage"].as_u64().unwrap() as u8).unwrap();
        let inputs = PlanInputs {
            config: config.clone(),
            world,
            compute_bytes: 4,
            grad_bytes: 4,
            optimizer_bytes: 4, // RMSprop
            reference: ReferencePlan::None,
            sequences: 1,
            length: 64,
            accumulation: 1,
            logits_chunk_tokens: 4096,
            checkpointing: run["checkpointing"].as_bool(),
            // The recorded runs predate overlap; only the state is compared.
            overlap: false,
        };
        let plan = MemoryPlan::new(&inputs, None);
        assert_eq!(
            plan.padded_parameters,
            run["padded_params"].as_i64().unwrap()
        );
        let state = plan.stage(stage).state.total() as f64 / mib;
        let tensors = run["measured_state_mib"].as_f64().unwrap();
        assert!(
            (state - tensors).abs() < 0.1,
            "stage {stage}, {world} ranks: plan {state} MiB, tensors {tensors} MiB"
        );
        let grown = run["rss_after_first_step_mib"].as_f64().unwrap()
            - run["rss_before_model_mib"].as_f64().unwrap();
        assert!(
            (grown - state).abs() <= 0.10 * grown,
            "stage {stage}, {world} ranks: plan {state:.1} MiB, resident growth {grown:.1} MiB"
        );
        assert_eq!(
            plan.stage(stage).bytes_per_step,
            run["zero_bytes_per_step"].as_i64().unwrap(),
            "stage {stage}, {world} ranks: bytes per step"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} runs recorded");
}
