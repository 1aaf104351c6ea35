"""The pre-commit hooks of .pre-commit-hooks.yaml, run by the real pre-commit.

A repository of configs uses the hooks as a user would: a .pre-commit-config.yaml
that points at a clone of this repository. pre-commit installs the hooks'
environment once (pip-installs the compiler: jinja2, pyyaml, jsonschema, black,
from the package index); both hooks share it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
BAD = ROOT / "tests" / "bad" / "expr_job_typo_no_unused_warning.yaml"
# what pip needs to install the compiler
SHIPPED = (
    ".pre-commit-hooks.yaml",
    "pyproject.toml",
    "README.md",
    "mccompile",
    "templates",
    "schemas",
    "chat_templates",
)

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(cwd: Path, *args: str) -> str:
    run = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return run.stdout.strip()


def _pre_commit() -> list[str]:
    pytest.importorskip("pre_commit", reason="needs pre-commit (the dev extra)")
    return [sys.executable, "-m", "pre_commit"]


@pytest.fixture(scope="session")
def hooks_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """This repository's working tree (uncommitted changes too), committed in a clone."""
    repo = tmp_path_factory.mktemp("hooks-repo")
    for name in SHIPPED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, repo / name)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "hooks")
    return repo, _git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pre-commit's cache: the hooks' environment is built once for every test."""
    return tmp_path_factory.mktemp("pre-commit-home")


def _user_repo(tmp_path: Path, hooks_repo: tuple[Path, str]) -> Path:
    repo = tmp_path / "user"
    (repo / "configs").mkdir(parents=True)
    url, rev = hooks_repo
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n"
        f"  - repo: {url}\n"
        f"    rev: {rev}\n"
        f"    hooks:\n"
        f"      - id: mccompile-validate\n"
        f"        files: ^configs/\n"
        f"      - id: mccompile-check\n"
        f"        args: [configs/quickstart.yaml, --out, generated/]\n"
    )
    shutil.copy(QUICKSTART, repo / "configs" / "quickstart.yaml")
    _git(repo, "init", "-q")
    return repo


def _run(repo: Path, store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PRE_COMMIT_HOME": str(store), "PRE_COMMIT_COLOR": "never"}
    env.pop("PYTHONPATH", None)  # the hook runs the compiler pre-commit installed
    return subprocess.run(
        [*_pre_commit(), "run", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def test_validate_hook_passes_a_good_config_and_fails_a_bad_one(
    tmp_path: Path, hooks_repo: tuple[Path, str], store: Path
) -> None:
    repo = _user_repo(tmp_path, hooks_repo)
    shutil.copy(BAD, repo / "configs" / "bad.yaml")
    (repo / "notes.yaml").write_text("not: a config\n")  # outside configs/: not checked
    _git(repo, "add", ".")

    good = _run(repo, store, "mccompile-validate", "--files", "configs/quickstart.yaml")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "mccompile validate" in good.stdout and "Passed" in good.stdout

    bad = _run(repo, store, "mccompile-validate", "--files", "configs/bad.yaml", "notes.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert (
        "configs/bad.yaml:21:20: error: job 'train' refers to job 'laod', which workflow 'w'"
        " does not have (did you mean 'load'?)"
    ) in bad.stdout
    assert "notes.yaml" not in bad.stdout


def test_check_hook_fails_when_the_committed_output_is_stale(
    tmp_path: Path, hooks_repo: tuple[Path, str], store: Path
) -> None:
    from mccompile.cli import main

    repo = _user_repo(tmp_path, hooks_repo)
    config = repo / "configs" / "quickstart.yaml"
    assert main(["build", str(config), "-o", str(repo / "generated")]) == 0
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "configs and their programs")

    fresh = _run(repo, store, "mccompile-check", "--all-files")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "Passed" in fresh.stdout

    config.write_text(config.read_text().replace("learning_rate: 1e-3", "learning_rate: 2e-4"))
    _git(repo, "add", ".")
    stale = _run(repo, store, "mccompile-check", "--all-files")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "generated/quickstart/train.py: differs" in stale.stdout
    assert "generated: out of date; run mccompile build to update it" in stale.stdout
