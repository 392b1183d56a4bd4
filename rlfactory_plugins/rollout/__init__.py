"""Multi-turn rollout: the verl agent loop, tool-call parsers, limits."""
