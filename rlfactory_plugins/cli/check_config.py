"""``rlfactory check-config [overrides…]``: compose the config exactly as
``main_ppo +plugins=rlfactory`` would, and validate it without starting anything."""

from __future__ import annotations

import re

import typer
from hydra import compose, initialize_config_module

from rlfactory_plugins.errors import RLFactoryError


def compose_config(overrides: list[str]):
    """verl's ppo_trainer config + ``+plugins=rlfactory`` + the user's overrides."""
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return compose(config_name="ppo_trainer", overrides=["+plugins=rlfactory", *overrides])


def _allowed_hint(message: str) -> str:
    """For Hydra's "Could not override 'rlfactory.x.y'", list the keys allowed there."""
    from rlfactory_plugins.config import RLFactoryConfig, allowed_keys

    match = re.search(r"Could not override '(rlfactory\.[\w.]+)'", message)
    if not match:
        return ""
    keys = allowed_keys(RLFactoryConfig, tuple(match.group(1).split(".")[1:]))
    return f"\n{match.group(1)}: unknown key (allowed keys: {', '.join(keys)})" if keys else ""


def check_config_cmd(ctx: typer.Context) -> None:
    """Validate the training config (pass the same overrides as to main_ppo)."""
    from rlfactory_plugins.hydra_callback import check_rlfactory_config

    overrides = [a for a in ctx.args if a != "+plugins=rlfactory"]
    try:
        cfg = compose_config(overrides)
        model = check_rlfactory_config(cfg)
    except RLFactoryError as e:
        typer.secho(f"rlfactory: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except Exception as e:  # Hydra: unknown override key, bad syntax
        typer.secho(f"config error: {e}{_allowed_hint(str(e))}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    agent = cfg.actor_rollout_ref.rollout.agent.default_agent_loop
    typer.echo(
        f"ok: agent loop {agent!r}, reward manager {cfg.reward.reward_manager.name!r}, "
        f"parser {model.parser!r}, tools {[t.name for t in model.tools]}, rewards {[r.name for r in model.rewards]}"
    )
