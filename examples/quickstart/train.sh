#!/usr/bin/env bash
# The demo's launch line: verl's own GRPO trainer with rlfactory's agent loop, tools and rewards.
# It is the line a GPU user runs (rollout.name=vllm); only model, data and sizes are small here.
# On a host without an accelerator rlfactory's CPU mode serves the rollout with transformers.
#
#   RUN_DIR=runs/demo MODEL=runs/demo/model DATA=runs/demo/data bash examples/quickstart/train.sh [overrides...]
#
# run_demo.py prepares MODEL and DATA (tiny model + warm start, parquet files) and calls this script.
set -euo pipefail

RUN_DIR=${RUN_DIR:-runs/demo}
MODEL=${MODEL:-$RUN_DIR/model}
DATA=${DATA:-$RUN_DIR/data}
CORPUS=${CORPUS:-$RUN_DIR/world/corpus.jsonl}
STEPS=${STEPS:-30}
PROMPTS=${PROMPTS:-8}          # prompts per step
SAMPLES=${SAMPLES:-4}          # GRPO group size (rollout.n)
WORKERS=${WORKERS:-1}          # trainer processes (GPUs on a GPU host)
SEED=${SEED:-0}
LR=${LR:-3e-4}
MINI=$(( PROMPTS / 2 > 0 ? PROMPTS / 2 : 1 ))   # prompts per actor update: 2 updates per step
BATCH=$((PROMPTS * SAMPLES))                    # trajectories per step

export VERL_FILE_LOGGER_PATH="$RUN_DIR/metrics.jsonl"   # verl's `file` logger: one JSON line per step

ARGS=(
    +plugins=rlfactory
    algorithm.adv_estimator=grpo
    algorithm.use_kl_in_reward=false
    data.train_files="$DATA/train.parquet"
    data.val_files="$DATA/val.parquet"
    data.train_batch_size="$PROMPTS"
    data.max_prompt_length=64
    data.max_response_length=96
    data.dataloader_num_workers=0
    data.seed="$SEED"
    actor_rollout_ref.model.path="$MODEL"
    actor_rollout_ref.actor.optim.lr="$LR"
    actor_rollout_ref.actor.ppo_mini_batch_size="$MINI"
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=$((MINI * SAMPLES))
    actor_rollout_ref.actor.use_kl_loss=false
    actor_rollout_ref.actor.entropy_coeff=0
    actor_rollout_ref.rollout.name=vllm
    actor_rollout_ref.rollout.n="$SAMPLES"
    actor_rollout_ref.rollout.temperature=1.0
    actor_rollout_ref.rollout.tensor_model_parallel_size=1
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu="$BATCH"
    actor_rollout_ref.rollout.calculate_log_probs=true
    rlfactory.parser=search_r1
    "rlfactory.tools=[{name: search, options: {backend: bm25, topk: 1, corpus: '$CORPUS', cache_dir: '$(dirname "$CORPUS")/index'}}]"
    "rlfactory.rewards=[{name: qa_em, weight: 0.5}, {name: qa_format, weight: 0.25}, {name: tool_verify, weight: 0.25, options: {require_call: true}}]"
    rlfactory.rollout.max_turns=2
    rlfactory.rollout.max_calls_per_turn=1
    rlfactory.rollout.max_observation_tokens=48
    rlfactory.trajectory_dir="$RUN_DIR/trajectories"
    rlfactory.metrics_file="$RUN_DIR/rlfactory_metrics.jsonl"
    trainer.logger='[console,file]'
    trainer.project_name=rlfactory-demo
    trainer.experiment_name="$(basename "$RUN_DIR")"
    trainer.nnodes=1
    trainer.n_gpus_per_node="$WORKERS"
    trainer.total_training_steps="$STEPS"
    trainer.val_before_train=false
    trainer.test_freq=-1
    trainer.save_freq=-1
    trainer.default_local_dir="$RUN_DIR/checkpoints"
)

echo "+ python -m verl.trainer.main_ppo ${ARGS[*]} $*"
exec "${PYTHON:-python}" -m verl.trainer.main_ppo "${ARGS[@]}" "$@"
