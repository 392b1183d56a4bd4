"""Hydra discovers this through the ``hydra_plugins`` namespace package: it adds
rlfactory's packaged configs, so ``+plugins=rlfactory`` resolves in any Hydra app
(verl's ``main_ppo`` included)."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class RLFactorySearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="rlfactory", path="pkg://rlfactory_plugins.hydra_config")
