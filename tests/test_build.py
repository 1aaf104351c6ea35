"""mccompile build: determinism, safe output, --check, --force, launch configs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mccompile.cli import main
from mccompile.codegen import render

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "guide" / "guide_9_8_1_1.yaml"


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _build_in_process(out: Path, *extra: str) -> int:
    return main(["build", str(CONFIG), "-o", str(out), *extra])


def test_build_writes_the_layout(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _build_in_process(out) == 0
    assert sorted(_tree(out)) == [
        "manifest.json",
        "train-alpaca/README.md",
        "train-alpaca/accelerate_config.yaml",
        "train-alpaca/launch.sh",
        "train-alpaca/requirements.txt",
        "train-alpaca/train.py",
    ]
    assert os.access(out / "train-alpaca" / "launch.sh", os.X_OK)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"] == CONFIG.name
    assert set(manifest["files"]) == set(_tree(out)) - {"manifest.json"}


@pytest.mark.parametrize("seed", ["0", "1"])
def test_build_is_deterministic_across_processes_and_hash_seeds(tmp_path: Path, seed: str) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert _build_in_process(first) == 0
    env = {**os.environ, "PYTHONHASHSEED": seed}
    subprocess.run(
        [sys.executable, "-m", "mccompile", "build", str(CONFIG), "-o", str(second)],
        check=True,
        env=env,
        capture_output=True,
    )
    assert _tree(first) == _tree(second)


def test_no_absolute_paths_or_timestamps(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _build_in_process(out) == 0
    for path, data in _tree(out).items():
        text = data.decode()
        assert str(tmp_path) not in text, path
        assert str(ROOT) not in text, path


def test_check_reports_drift_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _build_in_process(out, "--check") == 1
    assert not out.exists()
    assert _build_in_process(out) == 0
    assert _build_in_process(out, "--check") == 0
    program = out / "train-alpaca" / "train.py"
    program.write_text(program.read_text() + "# edited\n")
    capsys.readouterr()
    assert _build_in_process(out, "--check") == 1
    assert "train.py: differs" in capsys.readouterr().err
    assert program.read_text().endswith("# edited\n")


def test_foreign_files_are_refused_and_kept_with_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert _build_in_process(out) == 2
    assert sorted(_tree(out)) == ["notes.txt"]
    assert _build_in_process(out, "--force") == 0
    assert (out / "notes.txt").read_text() == "mine"
    # a rebuild keeps them too, and removes only files mccompile wrote before
    assert _build_in_process(out, "--force") == 0
    assert (out / "notes.txt").read_text() == "mine"


def test_rebuild_over_own_output_needs_no_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _build_in_process(out) == 0
    assert _build_in_process(out) == 0


def test_unknown_workflow_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _build_in_process(tmp_path / "out", "--workflow", "nope") == 2
    assert "no workflow 'nope'" in capsys.readouterr().err


def test_plan_shows_run_order_defaults_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    config = ROOT / "tests" / "guide" / "guide_9_8_3_1.yaml"
    assert main(["plan", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.index("1. load:") < out.index("2. process:") < out.index("3. train:")
    assert re.search(r"optimizer += 'adamw_torch'  # default", out)
    assert "--template (string, required)" in out


def test_accelerate_reads_every_launch_config(tmp_path: Path) -> None:
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import load_config_from_file

    configs = sorted((ROOT / "golden").glob("*/config.yaml"))
    for config in configs:
        out = tmp_path / config.parent.name
        assert main(["build", str(config), "-o", str(out)]) == 0
        for launch in out.glob("*/accelerate_config.yaml"):
            loaded = load_config_from_file(str(launch))
            expected = "MULTI_GPU" if "ddp" in config.parent.name else "NO"
            assert str(loaded.distributed_type).endswith(expected), (
                launch,
                loaded.distributed_type,
            )
            assert str(loaded.mixed_precision) in ("no", "fp16", "bf16")


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert "mccompile" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    assert "--check" in capsys.readouterr().out


def test_the_cache_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCCOMPILE_CACHE_DIR", "off")
    assert _build_in_process(tmp_path / "uncached") == 0
    monkeypatch.setenv("MCCOMPILE_CACHE_DIR", str(tmp_path / "cache"))
    # black for every piece (no lines kept as written), so the cache fills
    monkeypatch.setattr(render, "USE_VERBATIM", False)
    assert _build_in_process(tmp_path / "cold") == 0
    assert _build_in_process(tmp_path / "warm") == 0
    uncached = _tree(tmp_path / "uncached")
    assert uncached == _tree(tmp_path / "cold") == _tree(tmp_path / "warm")
    assert any((tmp_path / "cache" / "black").rglob("*"))


def test_a_build_killed_while_writing_leaves_the_old_output_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _build_in_process(out) == 0
    before = _tree(out)
    other = ROOT / "tests" / "guide" / "guide_9_5_5_1.yaml"  # different files to write
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from mccompile.cli import main\n"
        "real = Path.write_bytes\n"
        "calls = []\n"
        "def dying(self, data):\n"
        "    calls.append(self)\n"
        "    if len(calls) == 3:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(self, data)\n"
        "Path.write_bytes = dying\n"
        "main(['build', sys.argv[1], '-o', sys.argv[2]])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(other), str(out)], capture_output=True, check=False
    )
    assert result.returncode == -9
    assert _tree(out) == before
    # the next build cleans up nothing of the user's and succeeds
    assert _build_in_process(out) == 0
    assert _tree(out) == before


def test_a_failed_build_removes_its_staging_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert _build_in_process(out) == 0
    before = _tree(out)
    real = Path.write_bytes
    calls: list[Path] = []

    def failing(self: Path, data: bytes) -> int:
        calls.append(self)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing)
    assert _build_in_process(out) == 2
    monkeypatch.undo()
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize(
    ("distributed", "expected", "extra"),
    [
        ("{strategy: none}", "NO", {}),
        ("{strategy: ddp, num_processes: 4}", "MULTI_GPU", {"num_processes": 4}),
        ("{strategy: ddp, num_machines: 2, num_processes: 8}", "MULTI_GPU", {"num_machines": 2}),
        ("{strategy: fsdp, offload: true}", "FSDP", {"fsdp_offload_params": True}),
        ("{strategy: deepspeed, zero_stage: 1}", "DEEPSPEED", {"zero_stage": 1}),
        ("{strategy: deepspeed}", "DEEPSPEED", {"zero_stage": 2}),
        ("{strategy: deepspeed, zero_stage: 3, offload: true}", "DEEPSPEED", {"zero_stage": 3}),
    ],
)
def test_accelerate_reads_each_strategy(
    tmp_path: Path, distributed: str, expected: str, extra: dict[str, object]
) -> None:
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import load_config_from_file

    config = tmp_path / "c.yaml"
    config.write_text(
        "components:\n  - id: t\n    type: model-trainer\n    model: m\n    bf16: true\n"
        f"    distributed: {distributed}\n"
    )
    assert main(["build", str(config), "-o", str(tmp_path / "out")]) == 0
    loaded = load_config_from_file(str(tmp_path / "out" / "t" / "accelerate_config.yaml"))
    assert str(loaded.distributed_type).endswith(expected)
    assert loaded.mixed_precision == "bf16"
    settings = {**vars(loaded), **(loaded.fsdp_config or {}), **(loaded.deepspeed_config or {})}
    for key, value in extra.items():
        assert settings[key] == value, (key, settings)
    requirements = (tmp_path / "out" / "t" / "requirements.txt").read_text()
    assert ("deepspeed" in requirements) == (expected == "DEEPSPEED")


OPTIMIZER_NAMES = {
    "adamw_torch": ("adamw_torch", None),
    "adamw_torch_fused": ("adamw_torch_fused", None),
    "adamw_8bit": ("adamw_8bit", "bitsandbytes"),
    "adamw_bnb_8bit": ("adamw_bnb_8bit", "bitsandbytes"),
    "adafactor": ("adafactor", None),
    "lomo": ("lomo", "lomo-optim"),
    "galore_adamw": ("galore_adamw", "galore-torch"),
    "galore_adamw_8bit": ("galore_adamw_8bit", "galore-torch"),
    "grokadamw": ("grokadamw", "grokadamw"),
    "stableadamw": ("stable_adamw", "torch-optimi"),
    "schedule_free_radamw": ("schedule_free_radam", "schedulefree"),
    "sgd": ("sgd", None),
    "adagrad": ("adagrad", None),
    "rmsprop": ("rmsprop", None),
}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZER_NAMES))
def test_every_guide_optimizer_maps_to_transformers(tmp_path: Path, optimizer: str) -> None:
    transformers_name, package = OPTIMIZER_NAMES[optimizer]
    config = tmp_path / "c.yaml"
    config.write_text(
        "components:\n  - id: t\n    type: model-trainer\n    model: m\n"
        f"    optimizer: {optimizer}\n"
    )
    assert main(["build", str(config), "-o", str(tmp_path / "out")]) == 0
    program = (tmp_path / "out" / "t" / "train.py").read_text()
    assert f'OPTIMIZER = "{transformers_name}"' in program
    requirements = (tmp_path / "out" / "t" / "requirements.txt").read_text()
    if package:
        assert package in requirements
    assert ("optim_target_modules" in program) == optimizer.startswith("galore")
    pytest.importorskip("transformers")
    from transformers.training_args import OptimizerNames

    assert transformers_name in {o.value for o in OptimizerNames}


SCHEDULERS = [
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "reduce_lr_on_plateau",
    "cosine_with_min_lr",
    "warmup_stable_decay",
]


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_every_guide_scheduler_builds(tmp_path: Path, scheduler: str) -> None:
    config = tmp_path / "c.yaml"
    extra = "    validation_split: 0.1\n" if scheduler == "reduce_lr_on_plateau" else ""
    if scheduler == "warmup_stable_decay":
        extra += "    lr_scheduler_kwargs: {num_decay_steps: 100}\n"
    config.write_text(
        "components:\n  - id: t\n    type: model-trainer\n    model: m\n"
        f"    lr_scheduler_type: {scheduler}\n{extra}"
    )
    assert main(["build", str(config), "-o", str(tmp_path / "out")]) == 0
    program = (tmp_path / "out" / "t" / "train.py").read_text()
    assert f'LR_SCHEDULER_TYPE = "{scheduler}"' in program
    if scheduler == "cosine_with_min_lr":
        assert 'LR_SCHEDULER_KWARGS = {"min_lr_rate": 0.1}' in program


def test_output_through_a_symlink_writes_into_its_target(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    out = tmp_path / "out"
    out.symlink_to("real")
    assert _build_in_process(out) == 0
    assert out.is_symlink() and out.readlink() == Path("real")
    assert "manifest.json" in _tree(target)
    assert _build_in_process(out) == 0  # and again, over its own output
    assert out.is_symlink() and (target / "manifest.json").is_file()
    assert _build_in_process(out, "--check") == 0


def test_a_symlink_to_no_folder_is_refused_and_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.symlink_to("missing")
    assert _build_in_process(out) == 2
    assert "is a symlink to missing, which is not a folder" in capsys.readouterr().err
    assert out.is_symlink() and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_keeps_symlinks_empty_folders_and_fifos(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "data").mkdir()
    (out / "data" / "empty").mkdir(mode=0o700)
    (out / "link").symlink_to("../elsewhere")
    os.mkfifo(out / "pipe", 0o600)
    (out / "notes.sh").write_text("echo mine\n")
    (out / "notes.sh").chmod(0o700)
    assert _build_in_process(out) == 2
    for _ in range(2):  # the first build, and a rebuild over its own output
        assert _build_in_process(out, "--force") == 0
        assert (out / "link").readlink() == Path("../elsewhere")
        assert (out / "data" / "empty").is_dir() and not any((out / "data" / "empty").iterdir())
        assert (out / "data" / "empty").stat().st_mode & 0o777 == 0o700
        assert (out / "pipe").is_fifo() and (out / "pipe").stat().st_mode & 0o777 == 0o600
        assert (out / "notes.sh").read_text() == "echo mine\n"
        assert (out / "notes.sh").stat().st_mode & 0o777 == 0o700
        assert (out / "manifest.json").is_file()


def test_a_symlink_where_a_file_is_written_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert _build_in_process(out) == 0
    program = next(p for p in out.rglob("*.py"))
    program.unlink()
    program.symlink_to("/dev/null")
    before = sorted(p.name for p in out.rglob("*"))
    assert _build_in_process(out, "--force") == 2
    assert "is a symlink where mccompile writes a file" in capsys.readouterr().err
    assert program.is_symlink() and sorted(p.name for p in out.rglob("*")) == before
