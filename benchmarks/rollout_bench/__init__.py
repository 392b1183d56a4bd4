"""Helpers of ``benchmarks/rollout.py``: one rollout workload, three agent-loop drivers.

- :mod:`.scenarios` — what each scenario varies (tool latency tail, hangs, deadline, a stateful
  tool's sessions, a trainer behind the rollout) and the two server profiles (light, saturated).
- :mod:`.workload`  — the pre-sampled plan of every trajectory (same for every driver).
- :mod:`.server`    — a latency-modelled LLM server behind verl's server-manager interface.
- :mod:`.tools`     — the scripted tools (stateless ``bench_search``, per-trajectory stateful
  ``bench_kernel``), as rlfactory tools and as verl tools, over one backend.
- :mod:`.verl_config` — verl's real ppo_trainer config composed with ``+plugins=rlfactory``.
- :mod:`.agent_loops` — drive an agent-loop class (rlfactory's or verl's) the way verl does.
- :mod:`.turn_sync` — the turn-synchronous batch loop (Search-R1 / RL-Factory-fork design).
- :mod:`.overlap`   — the ``train_overlap`` scheduler (sync, sync + recycling, fully-async) over a modelled trainer.
- :mod:`.overlap_run` — ``train_overlap``'s runs of both loops and its JSON line.
- :mod:`.report`    — lower bound, per-driver statistics, the JSON line.
"""
