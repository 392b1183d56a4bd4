"""The name tables of docs/verl-boundary.md, written from :mod:`rlfactory_plugins.verl.compat`.

``python -m rlfactory_plugins.verl.compat_doc --write`` rewrites them in the doc (between its
``compat tables`` markers); without ``--write`` it prints them. tests/verl/test_verl_compat.py fails
when the doc and ``compat.py`` disagree, so a name added to the adapter is a name in the doc.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rlfactory_plugins.errors import RLFactoryError
from rlfactory_plugins.verl.compat import _PKG, INSTANCE_ATTRIBUTES, PRIVATE_NAMES, PUBLIC_NAMES, VerlName

BEGIN = "<!-- compat tables: python -m rlfactory_plugins.verl.compat_doc --write -->"
END = "<!-- end of compat tables -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "verl-boundary.md"


def _names(names: tuple[VerlName, ...]) -> list[str]:
    rows = ["| module | name | adapter module | why |", "|---|---|---|---|"]
    rows += [f"| `{n.module}` | `{n.attr}` | `{n.used_by.removeprefix(_PKG)}` | {n.why}"
             f"{' (checked only if verl loaded the module)' if n.if_loaded else ''} |" for n in names]
    return rows


def _attribute(entry: str) -> str:
    name, _, note = entry.partition(" (")  # "hf_model_type (verl 0.9.1 only)"
    return f"`{name}` ({note}" if note else f"`{name}`"


def tables() -> str:
    """The three tables (private names, public names, instance attributes) as Markdown."""
    lines = ["### private", "", *_names(PRIVATE_NAMES), "", "### public", "", *_names(PUBLIC_NAMES), "",
             "### instance attributes", "", "| object (adapter module) | attributes |", "|---|---|"]
    lines += [f"| {owner} | {', '.join(_attribute(a) for a in attrs)} |" for owner, attrs in INSTANCE_ATTRIBUTES.items()]
    return "\n".join(lines)


def split(text: str) -> tuple[str, str, str]:
    """``text`` cut at the markers: before, the tables, after."""
    if BEGIN not in text or END not in text:
        raise RLFactoryError(f"{DOC}: no '{BEGIN}' ... '{END}' block; put the markers back around the name tables")
    before, rest = text.split(BEGIN, 1)
    inside, after = rest.split(END, 1)
    return before, inside.strip("\n"), after


def write(doc: Path = DOC) -> bool:
    """Rewrite the tables in ``doc``; whether anything changed."""
    before, inside, after = split(doc.read_text())
    if inside == tables():
        return False
    doc.write_text(f"{before}{BEGIN}\n{tables()}\n{END}{after}")
    return True


def main(argv: list[str]) -> int:
    if "--write" in argv:
        print(f"{DOC}: {'rewritten' if write() else 'already up to date'}")
    else:
        print(tables())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
