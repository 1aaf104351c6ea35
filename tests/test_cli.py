"""The command line: help, summaries, and diagnostics as text, JSON and GitHub annotations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mccompile.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOOD = ROOT / "examples" / "quickstart.yaml"
TYPO = ROOT / "tests" / "bad" / "expr_job_typo_no_unused_warning.yaml"
CYCLE = ROOT / "tests" / "bad" / "cycle_two_jobs.yaml"

WARNS = """\
components:
  - id: data
    type: datasets
    provider: huggingface
    path: tatsu-lab/alpaca
controller:
  type: http-server
"""


def test_bare_command_prints_the_help_and_exits_2() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mccompile"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 2
    assert "usage: mccompile" in run.stderr
    for command in ("build", "validate", "plan", "diff", "schema"):
        assert f"    {command}" in run.stderr
    assert "Traceback" not in run.stderr


def test_validate_says_no_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(GOOD)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{GOOD}: no errors (1 workflow: quickstart)\n"
    assert err == ""


def test_validate_counts_errors_and_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warns = tmp_path / "warns.yaml"
    warns.write_text(WARNS)
    assert main(["validate", str(warns)]) == 0
    out, err = capsys.readouterr()
    assert err == (
        f"{warns}:6:1: warning: 'controller' is a model-compose key that mccompile ignores\n"
    )
    assert out == f"{warns}: no errors, 1 warning (1 workflow: data)\n"

    assert main(["validate", str(CYCLE), str(GOOD)]) == 2
    out, err = capsys.readouterr()
    assert err.splitlines()[-1] == f"{CYCLE}: 1 error"
    assert "nothing was built" not in err
    assert out == f"{GOOD}: no errors (1 workflow: quickstart)\n"


def test_build_says_nothing_was_built(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(TYPO), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"{TYPO}: 1 error; nothing was built"


@pytest.mark.parametrize("command", ["validate", "plan", "build"])
def test_json_lists_the_diagnostics_on_stdout(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = ["-o", str(tmp_path / "out")] if command == "build" else []
    assert main([command, str(CYCLE), *extra, "--format", "json"]) == 2
    out, err = capsys.readouterr()
    assert json.loads(out) == [
        {
            "file": str(CYCLE),
            "line": 14,
            "col": 22,
            "severity": "error",
            "code": "cycle",
            "message": "the jobs of workflow 'prep' form a cycle: a -> b -> a;"
            " job 'a' depends on job 'b' here",
            "suggestion": None,
        },
        {
            "file": str(CYCLE),
            "line": 17,
            "col": 22,
            "severity": "note",
            "code": "cycle",
            "message": "job 'b' depends on job 'a' here",
            "suggestion": None,
        },
    ]
    assert err.startswith(f"{CYCLE}: 1 error")  # the summary only, not the diagnostics again


def test_json_keeps_the_suggestion_apart(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "json", str(TYPO)]) == 2
    (diag,) = json.loads(capsys.readouterr().out)
    assert diag["message"] == "job 'train' refers to job 'laod', which workflow 'w' does not have"
    assert diag["suggestion"] == "did you mean 'load'?"
    assert (diag["line"], diag["col"], diag["code"]) == (21, 20, "unknown-job")


def test_json_of_a_good_config_is_an_empty_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", str(GOOD), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert "workflow quickstart" in err  # the plan itself, kept out of the JSON
    assert main(["build", str(GOOD), "-o", str(tmp_path / "out"), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert "wrote" in err
    assert (tmp_path / "out" / "quickstart" / "train.py").is_file()


def test_github_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--format", "github", str(TYPO), str(CYCLE)]) == 2
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        f"::error file={TYPO},line=21,col=20,title=mccompile unknown-job::job 'train' refers"
        " to job 'laod', which workflow 'w' does not have (did you mean 'load'?)",
        f"::error file={CYCLE},line=14,col=22,title=mccompile cycle::the jobs of workflow"
        " 'prep' form a cycle: a -> b -> a; job 'a' depends on job 'b' here",
        f"::notice file={CYCLE},line=17,col=22,title=mccompile cycle::job 'b' depends on"
        " job 'a' here",
    ]
    warns = tmp_path / "a,b.yaml"  # a comma in a property is escaped
    warns.write_text(WARNS)
    assert main(["validate", "--format", "github", str(warns)]) == 0
    out, _ = capsys.readouterr()
    shown = str(warns).replace(",", "%2C")
    assert [line for line in out.splitlines() if line.startswith("::")] == [
        f"::warning file={shown},line=6,col=1,title=mccompile ignored-key::'controller' is a"
        " model-compose key that mccompile ignores"
    ]


def test_github_annotates_drift_of_build_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "out"
    assert main(["build", str(GOOD), "-o", str(out_dir)]) == 0
    (out_dir / "quickstart" / "launch.sh").write_text("edited by hand\n")
    capsys.readouterr()
    assert main(["build", str(GOOD), "-o", str(out_dir), "--check", "--format", "github"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"::error file={(out_dir / 'quickstart' / 'launch.sh').as_posix()},title=mccompile"
        " drift::differs from what mccompile build writes; run mccompile build to update it"
    ]
    assert f"{out_dir / 'quickstart' / 'launch.sh'}: differs" in err


UNUSED = """\
components:
  - id: data
    type: datasets
    provider: huggingface
    path: tatsu-lab/alpaca
  - id: trainer
    type: model-trainer
    model: ./tiny-model
    dataset: ${input.dataset}
    peft_adapter: lora
workflows:
  - id: w
    jobs:
      - id: load
        component: data
      - id: extra
        component: data
      - id: train
        component: trainer
        input:
          dataset: ${jobs.load.output}
"""


def test_an_unused_job_is_a_warning_in_a_workflow_without_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "unused.yaml"
    config.write_text(UNUSED)
    assert main(["validate", str(config)]) == 0
    assert capsys.readouterr().err == (
        f"{config}:16:9: warning: the output of job 'extra' is used by no other job;"
        " the training program will still run it\n"
    )
    # with an error in the workflow, the warning would most often be about what it broke
    config.write_text(UNUSED.replace("${jobs.load.output}", "${jobs.laod.output}"))
    assert main(["validate", str(config)]) == 2
    assert "used by no other job" not in capsys.readouterr().err
