#!/usr/bin/env bash
# BFCL v4 multi-turn function calling with rlfactory: Qwen3-4B, GRPO, one node of 8 GPUs, vLLM rollout.
#
# Before running:
#   1. pip install -e '.[verl,vllm]' tool_plugins/rlfactory-env-bfcl
#      pip install --no-deps -r tool_plugins/rlfactory-env-bfcl/requirements-nodeps.txt   (bfcl-eval, no deps)
#   2. data:   python examples/bfcl/prepare_data.py --out data/bfcl   (800 entries -> 640 train / 160 test)
#   3. check:  bash examples/bfcl/train_qwen3_4b_grpo.sh --check   (composes the config, starts nothing)
#   4. score:  python examples/bfcl/evaluate.py runs/bfcl-qwen3-4b-grpo/trajectories --step last
#
# Settings: GRPO with n=8 samples per entry; the reward is bfcl_partial (dense per-turn credit) with
# bfcl_state_response logged at weight 0 (BFCL's own accuracy, the number to report). Lengths: BFCL's
# prompts carry up to ~30 function schemas (prompt 8192); an entry has up to 8 user turns, each a few
# calls, and the whole multi-turn response (assistant + observations + user turns) gets 12288 tokens;
# max_turns 40 bounds the assistant turns of all user turns together (BFCL allows 20 steps per turn).
# Observations are cut at 2048 tokens (long_context file listings are long).
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen3-4B}
DATA=${DATA:-data/bfcl}
RUN_NAME=${RUN_NAME:-bfcl-qwen3-4b-grpo}
N_GPUS=${N_GPUS:-8}

ARGS=(
    +plugins=rlfactory
    algorithm.adv_estimator=grpo
    algorithm.use_kl_in_reward=false
    data.train_files="$DATA/train.parquet"
    data.val_files="$DATA/test.parquet"
    data.train_batch_size=64
    data.max_prompt_length=8192
    data.max_response_length=12288
    data.filter_overlong_prompts=true
    data.return_raw_chat=true
    +data.apply_chat_template_kwargs.enable_thinking=false
    actor_rollout_ref.model.path="$MODEL_PATH"
    actor_rollout_ref.model.use_remove_padding=true
    actor_rollout_ref.model.enable_gradient_checkpointing=true
    actor_rollout_ref.actor.optim.lr=1e-6
    actor_rollout_ref.actor.ppo_mini_batch_size=16
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1
    actor_rollout_ref.actor.use_dynamic_bsz=true
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=24576
    actor_rollout_ref.actor.use_kl_loss=true
    actor_rollout_ref.actor.kl_loss_coef=0.001
    actor_rollout_ref.actor.kl_loss_type=low_var_kl
    actor_rollout_ref.actor.entropy_coeff=0
    actor_rollout_ref.rollout.name=vllm
    actor_rollout_ref.rollout.mode=async
    actor_rollout_ref.rollout.tensor_model_parallel_size=1
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6
    actor_rollout_ref.rollout.n=8
    actor_rollout_ref.rollout.temperature=1.0
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4
    actor_rollout_ref.rollout.agent.num_workers=8
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=4
    actor_rollout_ref.ref.fsdp_config.param_offload=true
    rlfactory.parser=hermes
    "rlfactory.tools=['GorillaFileSystem_*', 'MathAPI_*', 'MessageAPI_*', 'TicketAPI_*', 'TradingBot_*', 'TravelAPI_*', 'TwitterAPI_*', 'VehicleControlAPI_*']"
    "rlfactory.rewards=[{name: bfcl_partial, weight: 1.0}, {name: bfcl_state_response, weight: 0.0}]"
    rlfactory.rollout.max_turns=40
    rlfactory.rollout.max_user_turns=8
    rlfactory.rollout.max_calls_per_turn=8
    rlfactory.rollout.max_observation_tokens=2048
    rlfactory.tool_manager.max_concurrency=512
    rlfactory.trajectory_dir="runs/$RUN_NAME/trajectories"
    trainer.logger='[console,wandb]'
    trainer.project_name=rlfactory-bfcl
    trainer.experiment_name="$RUN_NAME"
    trainer.n_gpus_per_node="$N_GPUS"
    trainer.nnodes=1
    trainer.val_before_train=true
    trainer.test_freq=10
    trainer.save_freq=20
    trainer.total_epochs=10
    trainer.default_local_dir="checkpoints/$RUN_NAME"
)

if [[ "${1:-}" == "--check" ]]; then
    shift
    exec rlfactory check-config "${ARGS[@]}" "$@"
fi
python3 -m verl.trainer.main_ppo "${ARGS[@]}" "$@" 2>&1 | tee "$RUN_NAME.log"
