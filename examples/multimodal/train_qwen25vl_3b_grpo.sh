#!/usr/bin/env bash
# Image QA/crop with rlfactory: Qwen2.5-VL-3B-Instruct, GRPO, one node of 8 GPUs, vLLM rollout. The model
# sees the picture in its prompt and calls the image pack's image_crop / image_zoom to read a label
# too small for the whole picture; the tools' images come back as observations.
#
# Before running:
#   1. pip install -e '.[verl,vllm]' tool_plugins/rlfactory-tool-image reward_plugins/rlfactory-reward-qa qwen-vl-utils
#   2. data:   python examples/multimodal/prepare_data.py --out data/multimodal   (2000 train / 200 test, Pillow)
#   3. check:  bash examples/multimodal/train_qwen25vl_3b_grpo.sh --check   (composes the config on CPU, starts
#              nothing, needs neither the data nor the model weights)
#   4. report: rlfactory report runs/qwen25vl-3b-crop-grpo   (curves, and the sample trajectories' tool images)
#
# Settings: GRPO with n=8 samples per picture; the reward is qa_em (the <answer> against the label's code or
# colour) with qa_format at 0.1. Lengths: the 896x672 picture is 32x24 = 768 image tokens of the prompt (Qwen2.5-VL:
# 28x28 pixels a token); tool results are scaled to at most 448 px a side (<= 256 image tokens each), at most one
# image a call and 6 a trajectory (rlfactory.tool_manager.images), 6 turns, 8192 response tokens.
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-Qwen/Qwen2.5-VL-3B-Instruct}
DATA=${DATA:-data/multimodal}
RUN_NAME=${RUN_NAME:-qwen25vl-3b-crop-grpo}
N_GPUS=${N_GPUS:-8}

ARGS=(
    +plugins=rlfactory
    algorithm.adv_estimator=grpo
    algorithm.use_kl_in_reward=false
    data.train_files="$DATA/train.parquet"
    data.val_files="$DATA/test.parquet"
    data.image_key=images
    data.train_batch_size=64
    data.max_prompt_length=2048
    data.max_response_length=8192
    data.filter_overlong_prompts=true
    data.return_raw_chat=true
    actor_rollout_ref.model.path="$MODEL_PATH"
    actor_rollout_ref.model.use_remove_padding=true
    actor_rollout_ref.model.enable_gradient_checkpointing=true
    actor_rollout_ref.actor.optim.lr=1e-6
    actor_rollout_ref.actor.ppo_mini_batch_size=16
    actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2
    actor_rollout_ref.actor.use_dynamic_bsz=true
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=16384
    actor_rollout_ref.actor.use_kl_loss=true
    actor_rollout_ref.actor.kl_loss_coef=0.01
    actor_rollout_ref.actor.kl_loss_type=low_var_kl
    actor_rollout_ref.actor.entropy_coeff=0
    actor_rollout_ref.actor.fsdp_config.param_offload=false
    actor_rollout_ref.rollout.name=vllm
    actor_rollout_ref.rollout.mode=async
    actor_rollout_ref.rollout.tensor_model_parallel_size=1
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6
    actor_rollout_ref.rollout.enable_chunked_prefill=false
    actor_rollout_ref.rollout.enforce_eager=false
    +actor_rollout_ref.rollout.engine_kwargs.vllm.disable_mm_preprocessor_cache=true
    actor_rollout_ref.rollout.n=8
    actor_rollout_ref.rollout.temperature=1.0
    actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8
    actor_rollout_ref.rollout.agent.num_workers=8
    actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8
    actor_rollout_ref.ref.fsdp_config.param_offload=true
    rlfactory.parser=hermes
    "rlfactory.tools=[{name: image_crop, options: {max_side: 448}}, {name: image_zoom, options: {max_side: 448, max_zoom: 8}}]"
    "rlfactory.rewards=[{name: qa_em, weight: 0.9}, {name: qa_format, weight: 0.1}]"
    rlfactory.rollout.max_turns=6
    rlfactory.rollout.max_calls_per_turn=2
    rlfactory.tool_manager.images.max_per_call=1
    rlfactory.tool_manager.images.max_pixels_per_call=200704
    rlfactory.tool_manager.images.max_per_trajectory=6
    rlfactory.tool_manager.images.max_pixels_per_trajectory=1204224
    rlfactory.tool_manager.max_concurrency=256
    rlfactory.trajectory_dir="runs/$RUN_NAME/trajectories"
    trainer.logger='[console,file]'
    trainer.project_name=rlfactory-multimodal
    trainer.experiment_name="$RUN_NAME"
    trainer.n_gpus_per_node="$N_GPUS"
    trainer.nnodes=1
    trainer.val_before_train=true
    trainer.test_freq=10
    trainer.save_freq=50
    trainer.total_epochs=4
    trainer.default_local_dir="checkpoints/$RUN_NAME"
)

# verl's dataset measures an image row's prompt with qwen_vl_utils (verl/utils/dataset/rl_dataset.py,
# _process_multi_modal_info); without it data.filter_overlong_prompts=true drops every image row as "too long".
NO_QWEN_VL_UTILS="qwen_vl_utils is not installed: verl's length filter would drop every image row"
NO_QWEN_VL_UTILS+="; pip install qwen-vl-utils"
has_qwen_vl_utils() { python3 -c "import qwen_vl_utils" 2>/dev/null; }

if [[ "${1:-}" == "--check" ]]; then
    shift
    # check-config composes and validates the config only: it loads neither the data nor the model, its
    # tokenizer or its (Qwen2.5-VL) processor, so it runs offline on CPU; the processor is first loaded by
    # verl's workers (actor_rollout_ref.model.path) when training starts.
    echo "checking the config only: the data, the model weights and the Qwen2.5-VL processor are not loaded" >&2
    has_qwen_vl_utils || echo "warning: $NO_QWEN_VL_UTILS" >&2
    exec rlfactory check-config "${ARGS[@]}" "$@"
fi
has_qwen_vl_utils || { echo "error: $NO_QWEN_VL_UTILS" >&2; exit 2; }
mkdir -p "runs/$RUN_NAME"
export VERL_FILE_LOGGER_PATH="runs/$RUN_NAME/metrics.jsonl"   # verl's file logger: what `rlfactory report` reads
python3 -m verl.trainer.main_ppo "${ARGS[@]}" "$@" 2>&1 | tee "runs/$RUN_NAME/train.log"
