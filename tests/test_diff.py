"""mccompile diff: the settings a config change touches, then the diff of the generated files."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mccompile.cli import main

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.yaml"


def _changed(text: str, path: str) -> list[str]:
    """The -/+ lines of one file's hunk in the unified diff."""
    section = text.split(f"--- a/{path}\n+++ b/{path}\n", 1)[1].split("\n--- ", 1)[0]
    return [
        line
        for line in section.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def _edited(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    text = QUICKSTART.read_text()
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_learning_rate_change_is_one_line_of_train_py(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = _edited(tmp_path, "quickstart.yaml", ("learning_rate: 1e-3", "learning_rate: 2e-4"))
    assert main(["diff", str(QUICKSTART), str(new)]) == 1
    out = capsys.readouterr().out
    settings, files = out.split("\ngenerated files: ", 1)
    assert "  workflow quickstart:\n    job train:\n      learning_rate: 0.001 -> 0.0002\n" in (
        settings
    )
    assert files.startswith("1 changed\n  quickstart/train.py (changed)\n")
    assert _changed(out, "quickstart/train.py") == [
        "-LEARNING_RATE = 0.001  # Peak learning rate.",
        "+LEARNING_RATE = 0.0002  # Peak learning rate.",
    ]


def test_a_copy_under_another_name_compiles_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "renamed.yaml"
    shutil.copy(QUICKSTART, copy)
    assert main(["diff", str(QUICKSTART), str(copy)]) == 0
    assert "no change: both compile to the same files" in capsys.readouterr().out


def test_derived_settings_change_with_batch_and_processes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = _edited(
        tmp_path,
        "quickstart.yaml",
        ("lora_r: 8", "lora_r: 16"),
        (
            "per_device_train_batch_size: 8",
            "per_device_train_batch_size: 4\n    gradient_accumulation_steps: 4\n    bf16: true\n"
            "    distributed: {strategy: ddp, num_processes: 2}",
        ),
    )
    assert main(["diff", "--stat", str(QUICKSTART), str(new)]) == 1
    out = capsys.readouterr().out
    for row in (
        "lora_r: 8 -> 16",
        "per_device_train_batch_size: 8 -> 4",
        "gradient_accumulation_steps: 1 -> 4",
        "distributed.strategy: 'auto' -> 'ddp'",
        "(derived) effective batch size: 8 x processes (8 x 1 per process)"
        " -> 32 (4 x 4 x 2 processes)",
        "(derived) precision: fp32 -> bf16",
        "(derived) processes: one per GPU, 1 without one (auto) -> 2 (ddp)",
    ):
        assert f"      {row}\n" in out, out
    assert "quickstart/accelerate_config.yaml (changed)" in out
    assert "@@" not in out  # --stat: no file diff


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
    )


def test_rev_reads_the_old_config_from_git(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "configs").mkdir(parents=True)
    config = repo / "configs" / "quickstart.yaml"
    shutil.copy(QUICKSTART, config)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "first")
    monkeypatch.chdir(tmp_path)  # the path is relative to the repository, not to here
    shown = "repo/configs/quickstart.yaml"
    assert main(["diff", "--rev", "HEAD", shown]) == 0
    capsys.readouterr()
    config.write_text(config.read_text().replace("lora_r: 8", "lora_r: 32"))
    assert main(["diff", "--rev", "HEAD", shown]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"--- HEAD:configs/quickstart.yaml\n+++ {shown}\n")
    assert "      lora_r: 8 -> 32\n" in out
    assert _changed(out, "quickstart/train.py") == [
        "-LORA_R = 8  # LoRA rank.",
        "+LORA_R = 32  # LoRA rank.",
    ]
    assert main(["diff", "--rev", "no-such-rev", shown]) == 2
    assert "git show no-such-rev:configs/quickstart.yaml" in capsys.readouterr().err


def test_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = _edited(tmp_path, "quickstart.yaml", ("learning_rate: 1e-3", "learning_rat: 1e-3"))
    assert main(["diff", str(QUICKSTART), str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "unknown key 'learning_rat'" in err
    assert err.splitlines()[-1] == f"{bad}: 1 error"
    assert main(["diff", str(QUICKSTART)]) == 2
    assert "give OLD.yaml NEW.yaml" in capsys.readouterr().err
