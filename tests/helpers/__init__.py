"""Helpers shared by the tests, imported by their full name (``from tests.helpers.mcp import DEMO``):
no test modules and no fixtures here (fixtures are in the conftest.py files)."""
