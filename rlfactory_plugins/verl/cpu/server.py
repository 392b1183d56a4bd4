"""The transformers rollout server of the CPU backend: a Ray actor holding a ``transformers``
causal LM. It answers the token-in/token-out ``generate`` call that verl's agent loop makes
(``verl.workers.rollout.llm_server.LLMServerClient``) with a KV-cached sampling loop that also
returns per-token log-probs, and the control calls the trainer makes (sleep / wake_up / abort /
resume / kv-cache). Meant for tiny models and recipe debugging, not throughput.

A vision-language model (an image-text-to-text config, e.g. the tiny Qwen2-VL of
:mod:`rlfactory_plugins.testing.tiny_vl_model`) takes ``image_data``: the images whose placeholder
tokens the prompt ids already hold, in order. They go through the model's image processor (the one
verl's training side runs) and the prefill; positions are the model's M-RoPE index, passed
explicitly every step (the model's own cached ``rope_deltas`` is shared by interleaved requests).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, Optional

import ray
import torch
from verl.workers.config import HFModelConfig, RolloutConfig
from verl.workers.rollout.replica import TokenOutput

from rlfactory_plugins.verl.cpu.errors import CPUBackendError

logger = logging.getLogger(__name__)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}


def torch_dtype(name: str) -> torch.dtype:
    """Map a rollout ``dtype`` string to a torch dtype, naming the fix when unknown."""
    try:
        return _DTYPES[str(name).lower()]
    except KeyError:
        raise CPUBackendError(
            f"actor_rollout_ref.rollout.dtype={name!r} is not understood by the transformers "
            f"rollout; use one of {sorted(_DTYPES)}"
        ) from None


def _model_path(model_config: Any) -> str:
    path = getattr(model_config, "local_path", None) or getattr(model_config, "path", None)
    if path is None and hasattr(model_config, "get"):
        path = model_config.get("local_path") or model_config.get("path")
    if not path:
        raise CPUBackendError(
            "the transformers rollout needs actor_rollout_ref.model.path to point at a local "
            f"Hugging Face model directory; got model config {model_config!r}"
        )
    return str(path)


def _cfg(config: Any, key: str, default: Any = None) -> Any:
    if hasattr(config, "get"):
        try:
            return config.get(key, default)
        except Exception:  # dataclass-like configs without a dict-style default
            pass
    return getattr(config, key, default)


def server_actor_name(rollout_name: str, replica_rank: int, node_rank: int = 0, suffix: str = "") -> str:
    """Ray actor name of a server; the adapter and the replica must agree on it."""
    return f"{rollout_name}_server_{replica_rank}_{node_rank}{suffix}"


class HFRolloutServer:
    """Token-in/token-out generation with a ``transformers`` model on the local CPU.

    Created as a Ray actor by :class:`HFReplica`.  Requests are served one token step
    at a time on the actor's event loop, so concurrent requests interleave and the
    abort flag is honoured between tokens.
    """

    def __init__(
        self,
        config: RolloutConfig,
        model_config: HFModelConfig,
        replica_rank: int = 0,
        node_rank: int = 0,
    ) -> None:
        self.config = config
        self.model_config = model_config
        self.replica_rank = replica_rank
        self.node_rank = node_rank
        self.global_steps: Optional[int] = None
        self.model = None
        self.eos_token_ids: set[int] = set()
        self._dtype = torch_dtype(_cfg(config, "dtype", "bfloat16"))
        self._abort = False
        self._reject = False
        self._gate = asyncio.Event()
        self._gate.set()
        self._inflight = 0
        self._request_seq = 0
        self._weights_version = 0
        self.image_processor: Any = None  # vision-language models only
        self.image_token_id: Optional[int] = None

    # -- lifecycle ---------------------------------------------------------

    def launch_server(self) -> tuple[str, int]:
        """Load the model; return ``(path, number of parameters)``."""
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, GenerationConfig
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        path = _model_path(self.model_config)
        trust = bool(_cfg(self.model_config, "trust_remote_code", False))
        override = dict(_cfg(self.model_config, "override_config", {}) or {})
        attn = override.get("attn_implementation", "sdpa")
        if attn.startswith("flash_attention"):
            attn = "sdpa"  # no flash-attn kernels on CPU; the math is the same
        hf_config = AutoConfig.from_pretrained(path, trust_remote_code=trust)
        vision = hf_config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and hasattr(hf_config, "vision_config")
        auto = AutoModelForImageTextToText if vision else AutoModelForCausalLM
        self.model = auto.from_pretrained(path, torch_dtype=self._dtype, trust_remote_code=trust, attn_implementation=attn)
        if vision:
            self._load_image_processor(path, trust)
        self.model.eval()
        eos: list[int] = []
        try:
            gen = GenerationConfig.from_pretrained(path)
            eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
        except (OSError, ValueError):
            pass
        text_config = getattr(self.model.config, "text_config", None)  # a vision-language config keeps it there
        cfg_eos = getattr(self.model.config, "eos_token_id", getattr(text_config, "eos_token_id", None))
        eos += cfg_eos if isinstance(cfg_eos, list) else [cfg_eos]
        self.eos_token_ids = {int(t) for t in eos if t is not None}
        if not self.eos_token_ids:
            logger.warning("model at %s declares no eos_token_id; responses always run to max length", path)
        n_params = sum(p.numel() for p in self.model.parameters())
        logger.info("transformers rollout server %s loaded %s (%d params)", self.replica_rank, path, n_params)
        return path, n_params

    def _load_image_processor(self, path: str, trust: bool) -> None:
        processor = _cfg(self.model_config, "processor", None)
        if processor is None:
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust)
        self.image_processor = getattr(processor, "image_processor", None)
        self.image_token_id = getattr(self.model.config, "image_token_id", None)
        if self.image_processor is None or self.image_token_id is None or not hasattr(self.model.model, "get_rope_index"):
            raise CPUBackendError(
                f"the transformers CPU rollout serves vision-language models of the Qwen-VL kind (an image processor, "
                f"config.image_token_id, M-RoPE); {path} has processor {type(processor).__name__}. Run it on a GPU "
                "with vLLM/SGLang"
            )

    def _vision_inputs(self, prompt_ids: list[int], images: list[Any]) -> tuple[dict[str, Any], int]:
        """The prefill's pixel inputs and M-RoPE positions, and the position offset of later tokens."""
        ids = torch.tensor([prompt_ids], dtype=torch.long)
        extra: dict[str, Any] = {}
        if images:
            pixels = self.image_processor(images=list(images), return_tensors="pt")
            grid = pixels["image_grid_thw"]
            merge = int(getattr(self.image_processor, "merge_size", 1)) ** 2
            want, have = int(grid.prod(-1).sum()) // merge, int((ids == self.image_token_id).sum())
            if want != have:
                raise CPUBackendError(
                    f"the prompt holds {have} image tokens but its {len(images)} image(s) make {want}; the agent loop "
                    "must expand each image's placeholder with the model's own processor"
                )
            extra = {"pixel_values": pixels["pixel_values"].to(self._dtype), "image_grid_thw": grid}
        mm_types = (ids == self.image_token_id).int()
        positions, deltas = self.model.model.get_rope_index(ids, mm_types, image_grid_thw=extra.get("image_grid_thw"))
        return {**extra, "position_ids": positions}, int(deltas.reshape(-1)[0])

    def get_server_address(self) -> str:
        # verl keys its load balancer by address; this backend has no HTTP endpoint.
        return f"ray-actor://{ray.get_runtime_context().get_actor_name()}"

    # -- generation --------------------------------------------------------

    def _max_tokens(self, prompt_len: int, sampling_params: dict[str, Any]) -> int:
        prompt_length = int(_cfg(self.config, "prompt_length", 512))
        response_length = int(_cfg(self.config, "response_length", 512))
        max_model_len = _cfg(self.config, "max_model_len", None) or (prompt_length + response_length)
        room = int(max_model_len) - prompt_len
        if room < 1:
            raise CPUBackendError(
                f"prompt of {prompt_len} tokens leaves no room within max_model_len={max_model_len}; "
                "raise actor_rollout_ref.rollout.max_model_len or shorten the prompt"
            )
        if "max_tokens" in sampling_params:
            wanted = int(sampling_params["max_tokens"])
        elif "max_new_tokens" in sampling_params:
            wanted = int(sampling_params["max_new_tokens"])
        else:
            wanted = min(response_length, prompt_length + response_length - prompt_len)
        return max(1, min(wanted, room))

    @staticmethod
    def _filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
        if top_k is not None and 0 < top_k < logits.shape[-1]:
            kth = torch.topk(logits, top_k).values[..., -1, None]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if top_p is not None and 0.0 < top_p < 1.0:
            sorted_logits, idx = torch.sort(logits, descending=True)
            cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
            drop = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # keep the token crossing top_p
            sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)
        return logits

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        audio_data: Optional[list[Any]] = None,
        mm_processor_kwargs: Optional[dict[str, Any]] = None,
        priority: int = 0,
        **kwargs: Any,
    ) -> TokenOutput:
        if self.model is None:
            raise CPUBackendError("generate() called before launch_server(); the replica failed to start")
        if video_data or audio_data or (image_data and self.image_processor is None):
            raise CPUBackendError(
                "the transformers CPU rollout serves text-only models and vision-language models with images; got "
                f"{'video/audio' if video_data or audio_data else 'images for a text-only model'} for request "
                f"{request_id!r}. Run such recipes on a GPU with vLLM/SGLang"
            )
        sampling_params = dict(sampling_params or {})
        await self._gate.wait()
        extra_fields: dict[str, Any] = {"global_steps": self.global_steps}
        if self._reject:
            return TokenOutput(token_ids=[], log_probs=None, stop_reason="aborted", extra_fields=extra_fields)

        prompt_ids = [int(t) for t in prompt_ids]
        max_tokens = self._max_tokens(len(prompt_ids), sampling_params)
        temperature = float(sampling_params.get("temperature", _cfg(self.config, "temperature", 1.0)) or 0.0)
        top_p = float(sampling_params.get("top_p", 1.0) if sampling_params.get("top_p") is not None else 1.0)
        top_k = int(sampling_params.get("top_k", -1) if sampling_params.get("top_k") is not None else -1)
        rep_penalty = float(sampling_params.get("repetition_penalty", 1.0) or 1.0)
        want_logprobs = bool(sampling_params.get("logprobs", False))
        ignore_eos = bool(sampling_params.get("ignore_eos", _cfg(self.config, "ignore_eos", False)))

        self._request_seq += 1
        gen = torch.Generator()
        seed = sampling_params.get("seed")
        if seed is None:
            seed = int(_cfg(self.config, "seed", 0)) * 1_000_003 + self.replica_rank * 10_007 + self._request_seq
        gen.manual_seed(int(seed))

        self._inflight += 1
        token_ids: list[int] = []
        log_probs: list[float] = []
        stop_reason = "completed"
        weights_version = self._weights_version
        vision = self.image_processor is not None
        try:
            past = None
            step_input = torch.tensor([prompt_ids], dtype=torch.long)
            prefill, delta = await asyncio.to_thread(self._vision_inputs, prompt_ids, image_data or []) if vision else ({}, 0)
            for _ in range(max_tokens):
                if self._abort:
                    stop_reason = "aborted"
                    break
                if weights_version != self._weights_version:
                    past = None  # weights changed mid-request: recompute the prefix
                    step_input = torch.tensor([prompt_ids + token_ids], dtype=torch.long)
                    weights_version = self._weights_version
                    if vision:
                        prefill, delta = self._vision_inputs(prompt_ids + token_ids, image_data or [])
                step = prefill
                if vision and past is not None:  # one new token: its M-RoPE position on all three axes
                    at = len(prompt_ids) + len(token_ids) - 1 + delta
                    step = {"position_ids": torch.full((3, 1, 1), at, dtype=torch.long)}
                with torch.inference_mode():
                    out = self.model(input_ids=step_input, past_key_values=past, use_cache=True, **step)
                past = out.past_key_values
                logits = out.logits[0, -1].float()
                if rep_penalty != 1.0 and (prompt_ids or token_ids):
                    seen = torch.tensor(sorted(set(prompt_ids + token_ids)), dtype=torch.long)
                    vals = logits[seen]
                    logits[seen] = torch.where(vals > 0, vals / rep_penalty, vals * rep_penalty)
                if temperature > 0:
                    scaled = logits / temperature
                    filtered = self._filter_logits(scaled, top_k, top_p)
                    probs = torch.softmax(filtered, dim=-1)
                    tok = int(torch.multinomial(probs, 1, generator=gen).item())
                else:
                    scaled = logits
                    tok = int(torch.argmax(logits).item())
                if want_logprobs:
                    # Same quantity the actor recomputes: log_softmax(logits / T), unfiltered.
                    log_probs.append(float(torch.log_softmax(scaled, dim=-1)[tok].item()))
                token_ids.append(tok)
                if not ignore_eos and tok in self.eos_token_ids:
                    break
                step_input = torch.tensor([[tok]], dtype=torch.long)
                await asyncio.sleep(0)  # let other requests and control calls in
        finally:
            self._inflight -= 1
        return TokenOutput(
            token_ids=token_ids,
            log_probs=log_probs if want_logprobs else None,
            stop_reason=stop_reason,
            extra_fields=extra_fields,
        )

    # -- weights -----------------------------------------------------------

    def load_weights(self, named_tensors: list[tuple[str, torch.Tensor]], global_steps: Optional[int] = None) -> int:
        """Copy the trainer's (HF-named) tensors into the model; return how many were loaded."""
        if self.model is None:
            raise CPUBackendError("load_weights() called before launch_server()")
        # state_dict(keep_vars=True) also lists tied aliases such as lm_head.weight.
        params = dict(self.model.state_dict(keep_vars=True))
        unknown = [name for name, _ in named_tensors if name not in params]
        if unknown:
            raise CPUBackendError(
                f"trainer sent weights the rollout model does not have: {unknown[:5]}"
                f"{' ...' if len(unknown) > 5 else ''}; actor and rollout must load the same "
                "actor_rollout_ref.model.path"
            )
        with torch.no_grad():
            for name, tensor in named_tensors:
                target = params[name]
                if tuple(target.shape) != tuple(tensor.shape):
                    raise CPUBackendError(
                        f"weight {name!r} has shape {tuple(tensor.shape)} from the trainer but "
                        f"{tuple(target.shape)} in the rollout model"
                    )
                target.copy_(tensor.to(dtype=target.dtype))
            # a cheap fingerprint of what the model now holds: a run's log shows each sync changed the weights
            digest = sum(float(t.double().sum()) for t in self.model.state_dict().values())
        self._weights_version += 1
        if global_steps is not None:
            self.global_steps = global_steps
        print(
            f"rlfactory CPU rollout: weights loaded ({len(named_tensors)} tensors, version {global_steps}, "
            f"checksum {digest:.6f})", file=sys.stderr, flush=True,
        )
        return len(named_tensors)

    def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    # -- control calls made by the trainer -----------------------------------
    # The model lives in host memory and keeps no KV cache between requests, so
    # "memory" calls have nothing to free; they only have to answer.

    async def wake_up(self, tags: Optional[list[str]] = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def wait_for_requests_to_drain(self) -> None:
        while self._inflight:
            await asyncio.sleep(0.01)

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict:
        """Stop in-flight requests (they return ``stop_reason='aborted'``) and hold new ones."""
        self._gate.clear()
        self._reject = reject_request
        self._abort = True
        aborted = self._inflight
        await self.wait_for_requests_to_drain()
        self._abort = False
        return {"aborted_count": aborted, "request_ids": []}

    async def abort_request(self, request_id: str, reset_prefix_cache: bool = True) -> dict:
        return {"aborted": False, "request_id": request_id, "error": "per-request abort is not tracked"}

    async def resume_generation(self) -> None:
        self._reject = False
        self._gate.set()

    async def resume_engine_generation(self) -> None:
        await self.resume_generation()

    async def open_submission_gate(self) -> None:
        await self.resume_generation()

    async def start_profile(self, **kwargs: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None
