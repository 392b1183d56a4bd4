#!/usr/bin/env bash
# Search-R1 recipe with rlfactory: Qwen3-4B, GRPO, one node of 8 GPUs, vLLM rollout.
#
# Before running:
#   1. pip install -e '.[vllm]' tool_plugins/rlfactory-tool-search reward_plugins/rlfactory-reward-qa
#   2. data:   python examples/search_r1/prepare_data.py nq=$NQ/train.jsonl hotpotqa=$HQA/train.jsonl \
#                  --split train --output $DATA/train.parquet
#              python examples/search_r1/prepare_data.py nq=$NQ/test.jsonl hotpotqa=$HQA/dev.jsonl \
#                  --split test --output $DATA/test.parquet
#   3. index:  rlfactory-search-server --host 127.0.0.1 --port 8000 --corpus wiki-18.jsonl &
#              (Search-R1's wiki-18 passages; --backend dense for a dense index; one server per cluster)
#   4. check:  bash examples/search_r1/train_qwen3_4b_grpo.sh --check   (composes the config, starts nothing)
#
# Settings (references: RL-Factory's main_grpo.sh for Qwen3 on NQ, RLFactory paper arXiv 2509.06980;
# Search-R1's train_grpo.sh, arXiv 2503.09516):
#   prompts/step 128 (RL-Factory; Search-R1: 512)     samples/prompt n=4 (RL-Factory; Search-R1: 5)
#   PPO mini-batch 32 prompts (RL-Factory; S-R1: 256) lr 1e-6 (both); warmup ratio 0.285 (Search-R1)
#   KL: kl loss, coef 0.001, low_var_kl, no KL in reward (both)    temperature 1.0 (both)
#   turns: 2 assistant turns with a search each (both scripts set max_turns=2); topk 3 passages (both)
#   lengths: prompt 4096; per observation 500 tokens (Search-R1 max_obs_length); whole multi-turn
#            response 2048 tokens (verl's agent loop counts assistant + observation tokens together;
#            Search-R1 allows 500 per turn + 500 per observation)
#   epochs 5 (RL-Factory), validation every 10 steps, checkpoint every 20.
# Reported: RLFactory Qwen3-4B NQ EM 0.486 (vs 0.473 for Search-R1's Qwen2.5-7B-Instruct GRPO).
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen3-4B}
DATA=${DATA:-data/search_r1}
RETRIEVER_URL=${RETRIEVER_URL:-http://127.0.0.1:8000/retrieve}
RUN_NAME=${RUN_NAME:-search-r1-qwen3-4b-grpo}
N_GPUS=${N_GPUS:-8}

ARGS=(
    +plugins=rlfactory
    algorithm.adv_estimator=grpo
    algorithm.use_kl_in_reward=false
    data.train_files="$DATA/train.parquet"
    data.val_files="$DATA/test.parquet"
    data.train_batch_size=128
    data.max_prompt_length=4096
    data.max_response_length=2048
    data.filter_overlong_prompts=true
    data.return_raw_chat=true
    +data.apply_chat_template_kwargs.enable_thinking=false
    actor_rollout_ref.model.path="$MODEL_PATH"
    actor_rollout_ref.model.use_remove_padding=true
    actor_rollout_ref.model.enable_gradient_checkpointing=true
    actor_rollout_ref.actor.optim.lr=1e-6
    actor_rollout_ref.actor.optim.lr_warmup_steps_ratio=0.285
    actor_rollout_ref.actor.ppo_mini_batch_size=32
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8
    actor_rollout_ref.actor.use_kl_loss=true
    actor_rollout_ref.actor.kl_loss_coef=0.001
    actor_rollout_ref.actor.kl_loss_type=low_var_kl
    actor_rollout_ref.actor.entropy_coeff=0
    actor_rollout_ref.actor.fsdp_config.param_offload=false
    actor_rollout_ref.actor.fsdp_config.optimizer_offload=false
    actor_rollout_ref.rollout.name=vllm
    actor_rollout_ref.rollout.mode=async
    actor_rollout_ref.rollout.tensor_model_parallel_size=1
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6
    actor_rollout_ref.rollout.n=4
    actor_rollout_ref.rollout.temperature=1.0
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=16
    actor_rollout_ref.rollout.agent.num_workers=8
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=16
    actor_rollout_ref.ref.fsdp_config.param_offload=true
    rlfactory.parser=search_r1
    "rlfactory.tools=[{name: search, options: {backend: remote, url: '$RETRIEVER_URL', topk: 3}}]"
    "rlfactory.rewards=[{name: qa_em, weight: 1.0}]"
    rlfactory.rollout.max_turns=2
    rlfactory.rollout.max_calls_per_turn=1
    rlfactory.rollout.max_observation_tokens=500
    rlfactory.tool_manager.max_concurrency=512
    rlfactory.trajectory_dir="runs/$RUN_NAME/trajectories"
    trainer.logger='[console,wandb]'
    trainer.project_name=rlfactory-search-r1
    trainer.experiment_name="$RUN_NAME"
    trainer.n_gpus_per_node="$N_GPUS"
    trainer.nnodes=1
    trainer.val_before_train=true
    trainer.test_freq=10
    trainer.save_freq=20
    trainer.total_epochs=5
    trainer.default_local_dir="checkpoints/$RUN_NAME"
)

if [[ "${1:-}" == "--check" ]]; then
    shift
    exec rlfactory check-config "${ARGS[@]}" "$@"
fi
python3 -m verl.trainer.main_ppo "${ARGS[@]}" "$@" 2>&1 | tee "$RUN_NAME.log"
