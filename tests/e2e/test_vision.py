"""Vision-language programs (images_column on sft and dpo) trained for real on a tiny LLaVA-style
model built offline: a 2-layer CLIP vision tower of 32 px and the tiny Llama."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import _tiny_model_module
from tests.e2e.helpers import build, losses, ok, run, shared, summary, trainer_yaml

pytestmark = pytest.mark.e2e
pytest.importorskip("trl")
pytest.importorskip("PIL")

COLORS = {
    "red": (220, 20, 20),
    "blue": (20, 20, 220),
    "green": (20, 200, 20),
    "yellow": (230, 230, 20),
}


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny-vlm"
    _tiny_model_module().make_tiny_vlm(str(path))
    return path


def _images(folder: Path, count: int) -> list[tuple[str, str]]:
    """Solid-colour pictures of several sizes: (path relative to folder's parent, colour)."""
    from PIL import Image

    folder.mkdir(exist_ok=True)
    out = []
    for i in range(count):
        name = list(COLORS)[i % len(COLORS)]
        Image.new("RGB", (40 + 3 * i, 30 + i), COLORS[name]).save(folder / f"{i}.png")
        out.append((f"{folder.name}/{i}.png", name))
    return out


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps(rows, ensure_ascii=False))
    return path


def _program(tmp_path: Path, model: Path, task: str = "sft", **fields: object) -> Path:
    config = "components:\n" + trainer_yaml(
        model, tmp_path / "run", images_column="images", **fields
    )
    config = config.replace("task: sft", f"task: {task}")
    return build(tmp_path, config) / "trainer" / "train.py"


def _colour_data(tmp_path: Path, count: int = 8) -> Path:
    """Rows whose images sit beside the data file (relative paths start at its folder)."""
    data = tmp_path / "data"
    data.mkdir()
    rows = [
        {
            "messages": [
                {"role": "user", "content": "<image>What colour is this?"},
                {"role": "assistant", "content": f"It is {name}."},
            ],
            "images": [image],
        }
        for image, name in _images(data / "pictures", count)
    ]
    return _write(data / "colours.json", rows)


def test_llama_factory_demo_trains(tmp_path: Path, tiny_vlm: Path) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    shutil.copy(shared("mllm_demo.json"), demo / "mllm_demo.json")
    shutil.copytree(shared("mllm_demo.json").parent / "mllm_demo_data", demo / "mllm_demo_data")
    program = _program(tmp_path, tiny_vlm, peft_adapter="lora", per_device_train_batch_size=2)
    dry = ok(run(program, "--dataset", str(demo / "mllm_demo.json"), "--dry-run", cwd=tmp_path))
    assert "6 training rows with 8 images" in dry.stdout
    assert f"images from {demo}" in dry.stdout
    # the images in their places: 16 tokens each (32 px, 8 px patches), loss on the answers only
    assert "[image 1: 300 x 168, 16 tokens]Who are they?" in dry.stdout
    assert "What are they doing?[image 2: 300 x 168, 16 tokens]" in dry.stdout
    assert "[[They're Kane and Gretzka from Bayern Munich.</s>]]" in dry.stdout
    assert "[[Who" not in dry.stdout
    result = ok(
        run(program, "--dataset", str(demo / "mllm_demo.json"), "--max-steps", "2", cwd=tmp_path)
    )
    assert (
        "[vision] vision tower: 23,936 parameters, frozen; projector: 6,272 parameters, frozen"
        in result.stdout
    )
    assert (tmp_path / "run" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "run" / "processor_config.json").is_file()
    adapter = json.loads((tmp_path / "run" / "adapter_config.json").read_text())
    targets = adapter["target_modules"]
    assert targets and all(
        "language_model" in name for name in targets
    )  # no LoRA on the vision tower


def test_sharegpt_and_content_lists(tmp_path: Path, tiny_vlm: Path) -> None:
    pictures = _images(tmp_path / "pictures", 2)
    sharegpt = [
        {
            "conversations": [
                {"from": "human", "value": f"<image>Colour? {i}"},
                {"from": "gpt", "value": f"It is {name}."},
            ],
            "images": [image],
        }
        for i, (image, name) in enumerate(pictures)
    ]
    parts = [
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "Look: "}, {"type": "image"}],
                },
                {"role": "assistant", "content": [{"type": "text", "text": f"It is {name}."}]},
            ],
            "images": [image],
        }
        for image, name in pictures
    ]
    program = _program(tmp_path, tiny_vlm)
    for name, rows, shown in (
        ("sharegpt.json", sharegpt, "[image 1: 40 x 30, 16 tokens]Colour? 0"),
        ("parts.json", parts, "Look: [image 1: 40 x 30, 16 tokens]"),
    ):
        data = _write(tmp_path / name, rows)
        dry = ok(run(program, "--dataset", str(data), "--dry-run", cwd=tmp_path))
        assert shown in dry.stdout, dry.stdout
        assert "[[It is red.</s>]]" in dry.stdout


def test_image_count_checked_per_row(tmp_path: Path, tiny_vlm: Path) -> None:
    (image, _), (other, _) = _images(tmp_path / "pictures", 2)
    rows = [
        {
            "messages": [
                {"role": "user", "content": "<image>A?"},
                {"role": "assistant", "content": "B."},
            ],
            "images": [image],
        },
        {
            "messages": [
                {"role": "user", "content": "<image><image>A?"},
                {"role": "assistant", "content": "B."},
            ],
            "images": [other],
        },
    ]
    program = _program(tmp_path, tiny_vlm)
    result = run(
        program, "--dataset", str(_write(tmp_path / "bad.json", rows)), "--dry-run", cwd=tmp_path
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        "training row 1: 2 image places (<image> or {type: image}) in the turns but 1 image"
        " in column 'images'" in result.stderr
    )
    assert "Traceback" not in result.stderr
    missing = [{**rows[0], "images": ["pictures/none.png"]}]
    result = run(
        program,
        "--dataset",
        str(_write(tmp_path / "missing.json", missing)),
        "--dry-run",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "training row 0: image 'pictures/none.png' does not exist" in result.stderr


def test_pixel_bounds_resize(tmp_path: Path, tiny_vlm: Path) -> None:
    data = _colour_data(tmp_path, 1)
    program = _program(tmp_path, tiny_vlm, image_min_pixels=4800, image_max_pixels=4800)
    dry = ok(run(program, "--dataset", str(data), "--dry-run", cwd=tmp_path))
    assert (
        "[image 1: 80 x 60, 16 tokens]" in dry.stdout
    )  # 40 x 30 scaled up to 4,800 pixels, aspect kept


def test_sft_learns_against_a_still_control(tmp_path: Path, tiny_vlm: Path) -> None:
    data = _colour_data(tmp_path, 8)
    finals = {}
    for rate in (1e-2, 1e-9):  # the control: a learning rate that moves nothing
        folder = tmp_path / f"lr{rate}"
        folder.mkdir()
        program = _program(folder, tiny_vlm, learning_rate=rate, num_epochs=8)
        ok(run(program, "--dataset", str(data), "--max-steps", "30", cwd=folder))
        curve = losses(folder / "run")
        assert len(curve) == 30
        finals[rate] = sum(list(curve.values())[-5:]) / 5
        first = curve[1]
    assert finals[1e-9] == pytest.approx(first, rel=0.05)  # the control does not move
    assert finals[1e-2] < 0.6 * finals[1e-9], finals


def test_full_fine_tuning_keeps_the_vision_tower(tmp_path: Path, tiny_vlm: Path) -> None:
    from safetensors.torch import load_file

    data = _colour_data(tmp_path, 4)
    program = _program(tmp_path, tiny_vlm, learning_rate=1e-2, freeze_multi_modal_projector=False)
    result = ok(run(program, "--dataset", str(data), "--max-steps", "3", cwd=tmp_path))
    assert "projector: 6,272 parameters, trains in full" in result.stdout
    before = load_file(str(tiny_vlm / "model.safetensors"))
    after = load_file(str(tmp_path / "run" / "model.safetensors"))
    vision = [k for k in before if "vision_tower" in k]
    projector = [k for k in before if "multi_modal_projector" in k]
    assert vision and projector
    assert all(before[k].equal(after[k]) for k in vision)
    assert not all(before[k].equal(after[k]) for k in projector)


def test_dpo_on_image_pairs_learns(tmp_path: Path, tiny_vlm: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    names = list(COLORS)
    rows = [
        {
            "messages": [{"role": "user", "content": "<image>What colour is this?"}],
            "chosen": {"role": "assistant", "content": f"It is {name}."},
            "rejected": {
                "role": "assistant",
                "content": f"It is {names[(names.index(name) + 1) % 4]}.",
            },
            "images": [image],
        }
        for image, name in _images(data_dir / "pictures", 8)
    ]
    data = _write(data_dir / "pairs.json", rows)
    program = _program(
        tmp_path,
        tiny_vlm,
        task="dpo",
        peft_adapter="lora",
        lora_r=16,
        learning_rate=5e-3,
        num_epochs=8,
    )
    dry = ok(run(program, "--dataset", str(data), "--dry-run", cwd=tmp_path))
    assert "8 training pairs with 8 images" in dry.stdout
    assert "[image 1: 40 x 30]What colour is this?" in dry.stdout
    ok(run(program, "--dataset", str(data), "--max-steps", "20", cwd=tmp_path))
    s = summary(tmp_path / "run")
    curve = losses(tmp_path / "run")
    assert curve[1] == pytest.approx(0.6931, abs=1e-3)  # policy = reference at the start
    assert sum(list(curve.values())[-5:]) / 5 < 0.6, curve
    assert s["train_rewards/margins"] > 0
