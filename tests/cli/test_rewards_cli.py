import json

import pytest
from typer.testing import CliRunner

from rlfactory_plugins.cli import app
from tests.helpers.trajectories import make_trajectory

runner = CliRunner()


def write_inputs(tmp_path, full: bool):
    lines = [make_trajectory(uid="a").model_dump_json(), "",
             make_trajectory(uid="b", answer="Lyon").model_dump_json()]
    (tmp_path / "t.jsonl").write_text("\n".join(lines) + "\n")
    section = "rewards:\n  - {name: qa_em, weight: 1.0}\n  - {name: tool_verify, weight: 0.1, alias: tools}\n"
    if full:  # a training yaml: other sections, interpolations elsewhere
        text = "trainer:\n  project_name: x\n  experiment_name: ${trainer.project_name}-1\nrlfactory:\n" + "".join(
            f"  {line}\n" for line in section.splitlines())
    else:
        text = section
    (tmp_path / "cfg.yaml").write_text(text)
    return str(tmp_path / "cfg.yaml"), str(tmp_path / "t.jsonl")


def test_score_json(tmp_path):
    cfg, data = write_inputs(tmp_path, full=True)
    result = runner.invoke(app, ["rewards", "score", "--config", cfg, data, "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("uid") for r in rows[:2]] == ["a", "b"]
    assert rows[0]["total"] == pytest.approx(1.075) and rows[1]["total"] == pytest.approx(0.075)
    assert rows[0]["parts"]["tools"]["score"] == 0.75 and rows[0]["parts"]["tools"]["info"]["failed"] == 1
    summary = rows[2]["summary"]
    assert summary["count"] == 2 and summary["mean_total"] == pytest.approx(0.575)
    assert summary["parts"]["qa_em"] == {"mean": 0.5, "failed": 0}


def test_score_table_with_section_only(tmp_path):
    cfg, data = write_inputs(tmp_path, full=False)
    result = runner.invoke(app, ["rewards", "score", "-c", cfg, data])
    assert result.exit_code == 0, result.output
    assert "qa_em" in result.stdout and "tools" in result.stdout and "1.075" in result.stdout
    assert "0.575" in result.stdout  # the mean row


def test_errors_name_the_problem(tmp_path):
    cfg, data = write_inputs(tmp_path, full=False)
    (tmp_path / "bad.yaml").write_text("rewards: [qa_emm]\n")
    result = runner.invoke(app, ["rewards", "score", "-c", str(tmp_path / "bad.yaml"), data])
    assert result.exit_code == 2 and "did you mean 'qa_em'" in result.stderr
    (tmp_path / "bad.jsonl").write_text('{"turns": "nope"}\n')
    result = runner.invoke(app, ["rewards", "score", "-c", cfg, str(tmp_path / "bad.jsonl")])
    assert result.exit_code == 2 and "bad.jsonl:1" in result.stderr


def test_a_bad_trajectory_line_names_the_line_and_the_field(tmp_path):
    cfg, data = write_inputs(tmp_path, full=False)
    good = make_trajectory(uid="a").model_dump(mode="json")
    bad = {**good, "turns": [{**good["turns"][0], "index": "first"}]}
    (tmp_path / "bad.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    result = runner.invoke(app, ["rewards", "score", "-c", cfg, str(tmp_path / "bad.jsonl")])
    assert result.exit_code == 2
    assert "bad.jsonl:2:" in result.stderr and "turns[0].index: Input should be a valid integer" in result.stderr
    assert "(got 'first')" in result.stderr
