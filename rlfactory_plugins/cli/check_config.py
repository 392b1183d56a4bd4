"""``rlfactory check-config [--trainer main_ppo|fully_async] [overrides…]``: compose the config exactly as
``main_ppo +plugins=rlfactory`` (or verl's fully-async trainer) would, and validate it without starting anything."""

from __future__ import annotations

import difflib
import re

import typer

from rlfactory_plugins.cli.needs_verl import require_verl
from rlfactory_plugins.errors import RLFactoryError


def unknown_key_message(message: str) -> str | None:
    """For Hydra's "Could not override 'rlfactory.x.y'": the key, the keys allowed there, the close one.

    Said instead of Hydra's "To append to your config use +rlfactory.x.y=...", which is the
    wrong fix for a typo: the appended key is then rejected as unknown by the schema.
    """
    from rlfactory_plugins.config import RLFactoryConfig, allowed_keys

    match = re.search(r"Could not override '(rlfactory\.[\w.]+)'", message)
    if not match:
        return None
    key = match.group(1)
    loc = tuple(key.split(".")[1:])
    keys = allowed_keys(RLFactoryConfig, loc)
    if not keys:
        return None
    close = difflib.get_close_matches(loc[-1], keys, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{key}: unknown key (allowed keys: {', '.join(keys)}){hint}"


def check_config_cmd(
    ctx: typer.Context,
    trainer: str = typer.Option(
        "main_ppo", "--trainer",
        help="whose config to compose: main_ppo (verl.trainer.main_ppo) or fully_async "
             "(verl.experimental.fully_async_policy.fully_async_main)",
    ),
) -> None:
    """Validate the training config (pass the same overrides as to main_ppo or fully_async_main)."""
    require_verl("check-config")
    from rlfactory_plugins.verl.compose import compose_config
    from rlfactory_plugins.verl.config_check import check_config

    overrides = [a for a in ctx.args if a != "+plugins=rlfactory"]
    try:
        cfg = compose_config(overrides, trainer)
        model = check_config(cfg)
    except RLFactoryError as e:
        typer.secho(f"rlfactory: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except Exception as e:  # Hydra: unknown override key, bad syntax
        typer.secho(f"config error: {unknown_key_message(str(e)) or e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    agent = cfg.actor_rollout_ref.rollout.agent.default_agent_loop
    typer.echo(
        f"ok: agent loop {agent!r}, reward manager {cfg.reward.reward_manager.name!r}, "
        f"parser {model.parser!r}, tools {[t.name for t in model.tools]}, rewards {[r.name for r in model.rewards]}"
    )
