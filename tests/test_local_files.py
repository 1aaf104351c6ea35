"""validate names a local data path that is not there, at its line:col (a warning: the data
may be made before the run), looked up from the folder the program will start in."""

from __future__ import annotations

from pathlib import Path

import pytest

from mccompile.cli import main

CONFIG = """\
components:
  - id: data
    type: datasets
    provider: local
    loader: json
    data_files: {data_files}
  - id: trainer
    type: model-trainer
    model: ./tiny-model
    dataset: {dataset}
    output_dir: ./out
workflows:
  - id: train
    jobs:
      - id: load
        component: data
      - id: train
        component: trainer
"""
PASS_LOADED = """\
        input:
          dataset: ${jobs.load.output}
"""


def _validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data_files: str, dataset: str
) -> list[str]:
    config = tmp_path / "config.yaml"
    text = CONFIG.format(data_files=data_files, dataset=dataset)
    config.write_text(text + PASS_LOADED if dataset.startswith("${") else text)
    assert main(["validate", str(config)]) == 0  # warnings only: the data may come later
    lines = capsys.readouterr().err.splitlines()
    return [line for line in lines if "warning: data_files:" in line or "warning: dataset:" in line]


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "rows.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "a.jsonl").write_text('{"text": "a"}\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_paths_that_are_there_say_nothing(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _validate(here, capsys, "./rows.jsonl", "./parts/a.jsonl") == []
    assert _validate(here, capsys, "[./rows.jsonl, 'parts/*.jsonl']", "tatsu-lab/alpaca") == []
    assert _validate(here, capsys, "{train: ./rows.jsonl}", "${input.dataset}") == []


def test_a_missing_file_is_named_at_its_value(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (warning,) = _validate(here, capsys, "./row.jsonl", "${input.dataset}")
    assert warning.startswith(f"{here / 'config.yaml'}:6:17: warning: data_files: './row.jsonl'")
    assert "does not exist" in warning and "the folder the program starts in" in warning


def test_each_item_of_a_list_and_a_glob_that_matches_nothing(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = _validate(
        here, capsys, "[./rows.jsonl, ./gone.jsonl, 'parts/*.csv']", "./train.jsonl"
    )[:2]
    assert ":6:32: warning: data_files: './gone.jsonl' does not exist" in first
    assert ":6:46: warning: data_files: no file matches 'parts/*.csv'" in second


def test_a_trainer_dataset_path_but_not_a_hub_id(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (warning,) = _validate(here, capsys, "./rows.jsonl", "./missing.jsonl")
    assert ":10:14: warning: dataset: './missing.jsonl' does not exist" in warning
    assert _validate(here, capsys, "./rows.jsonl", "acme/chat-data") == []


def test_a_path_beside_the_config_but_not_here_says_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "rows.jsonl").write_text('{"text": "a"}\n')
    monkeypatch.chdir(tmp_path)  # one folder above the config and its data
    (warning,) = _validate(project, capsys, "./rows.jsonl", "${input.dataset}")
    assert "but it is beside the config: start from the config's folder" in warning
