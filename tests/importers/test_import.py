"""mccompile import: real Axolotl and LLaMA-Factory example configs into mccompile configs.

Each peer file under peers/ is a copy of a project's example (its header names the
repository, path and commit). Every import is run through the real command line: the
warnings are asserted by key and line, the result is validated and built, and `plan`
shows the peer's values.

The imports use keys of every part of the language (task dpo, chat_template,
special_tokens, bf16: auto, tf32, ddp_timeout, distributed.state_dict_type); a test fails
when the importer writes a key the schema does not have.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from mccompile import tasks
from mccompile.cli import main
from mccompile.diagnostics import Diagnostics
from mccompile.frontend import schema
from mccompile.frontend.loader import load

PEERS = Path(__file__).resolve().parent / "peers"

# peer file -> the warnings expected: (line, peer key)
EXPECTED: dict[tuple[str, str], list[tuple[int, str]]] = {
    ("axolotl", "lora-1b.yml"): [
        (5, "strict"),
        (10, "dataset_prepared_path"),
        (20, "pad_to_sequence_len"),
        (55, "loss_watchdog_threshold"),
        (56, "loss_watchdog_patience"),
    ],
    ("axolotl", "qlora-1b.yml"): [
        (8, "strict"),
        (13, "dataset_prepared_path"),
        (23, "pad_to_sequence_len"),
        (58, "loss_watchdog_threshold"),
        (59, "loss_watchdog_patience"),
    ],
    ("axolotl", "instruct-dpo-lora-8b.yml"): [
        (4, "model_type"),
        (5, "tokenizer_type"),
        (11, "strict"),
        (38, "pad_to_sequence_len"),
    ],
    ("axolotl", "fft-8b-liger-fsdp.yaml"): [
        (8, "liger_rope"),
        (9, "liger_rms_norm"),
        (10, "liger_glu_activation"),
        (11, "liger_fused_linear_cross_entropy"),
        (13, "strict"),
        (25, "dataset_prepared_path"),
        (31, "pad_to_sequence_len"),
        (50, "gradient_checkpointing_kwargs"),
        (64, "fsdp_config.fsdp_limit_all_gathers"),
        (65, "fsdp_config.fsdp_sync_module_states"),
        (67, "fsdp_config.fsdp_use_orig_params"),
        (68, "fsdp_config.fsdp_cpu_ram_efficient_loading"),
        (69, "fsdp_config.fsdp_auto_wrap_policy"),
        (70, "fsdp_config.fsdp_transformer_layer_cls_to_wrap"),
        (72, "fsdp_config.fsdp_sharding_strategy"),
        (73, "fsdp_config.fsdp_backward_prefetch"),
    ],
    ("axolotl", "qlora_deepspeed.yaml"): [
        (9, "strict"),
        (20, "pad_to_sequence_len"),
        (35, "low_cpu_mem_usage"),
        (39, "optimizer"),  # paged_adamw_8bit: imported as adamw_bnb_8bit, not paged
        (47, "gradient_checkpointing_kwargs"),
    ],
    ("llama-factory", "llama3_lora_sft.yaml"): [
        (16, "overwrite_cache"),
        (24, "overwrite_output_dir"),
    ],
    ("llama-factory", "llama3_lora_dpo.yaml"): [
        (18, "overwrite_cache"),
        (26, "overwrite_output_dir"),
    ],
    ("llama-factory", "llama3_full_sft_ds3.yaml"): [
        (16, "overwrite_cache"),
        (24, "overwrite_output_dir"),
    ],
    ("llama-factory", "llama3_lora_sft_otfq.yaml"): [
        (20, "overwrite_cache"),
        (28, "overwrite_output_dir"),
    ],
}

# peer file -> the differences the import states (LLaMA-Factory's preprocessing, tests/oracle)
DIFFERS: dict[tuple[str, str], list[str]] = {
    ("llama-factory", "llama3_lora_sft.yaml"): ["alpaca-input-separator", "truncation"],
    ("llama-factory", "llama3_full_sft_ds3.yaml"): ["alpaca-input-separator", "truncation"],
    ("llama-factory", "llama3_lora_sft_otfq.yaml"): ["alpaca-input-separator", "truncation"],
    ("llama-factory", "llama3_lora_dpo.yaml"): ["eos-after-end-of-turn", "truncation"],
}

CASES = sorted(EXPECTED)
IDS = [f"{peer}-{name}" for peer, name in CASES]

# keys other parts of the language bring; a trainer line with one of them is "pending"
PENDING_KEYS = (
    "chat_template",
    "special_tokens",
    "added_tokens",
    "message_fields",
    "roles",
    "tools_column",
    "tf32",
    "ddp_timeout",
    "state_dict_type",
    "beta",
    "loss_type",
    "chosen_column",
    "rejected_column",
    "reference_model",
    "label_smoothing",
)


def _import(tmp_path: Path, peer: str, name: str, *extra: str) -> tuple[Path, list[Any]]:
    out = tmp_path / "config.yaml"
    argv = ["import", peer, str(PEERS / peer / name), "-o", str(out), "--format", "json"]
    return out, _json_run([*argv, *extra], differs=True)


def _json_run(argv: list[str], differs: bool = False) -> list[Any]:
    """The diagnostics of a command; the stated differences from the peer's preprocessing
    (import-differs, asserted by test_import_warns_at_each_key...) only with differs."""
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    found: list[Any] = json.loads(buf.getvalue() or "[]")
    assert code == 0, found
    return [d for d in found if differs or d["code"] != "import-differs"]


def _key(message: str) -> str:
    m = re.search(r"key '([^']+)'", message)
    assert m, message
    return m.group(1)


def _missing(text: str) -> list[str]:
    """The keys the imported config uses that the schema here does not have yet."""
    fields = schema.trainer_fields()
    missing = []
    for task in re.findall(r"^\s+task: (\w+)", text, re.M):
        if task not in tasks.names():
            missing.append(f"task: {task}")
    for key in PENDING_KEYS:
        if re.search(rf"^\s+{key}:", text, re.M):
            known = key in fields or (
                key == "state_dict_type" and key in fields["distributed"].get("properties", {})
            )
            if not known:
                missing.append(key)
    if re.search(r"^\s+bf16: auto", text, re.M) and "auto" not in json.dumps(fields["bf16"]):
        missing.append("bf16: auto")
    return missing


@pytest.mark.parametrize(("peer", "name"), CASES, ids=IDS)
def test_import_warns_at_each_key_without_a_counterpart(
    tmp_path: Path, peer: str, name: str
) -> None:
    out, found = _import(tmp_path, peer, name)
    assert [d["severity"] for d in found] == ["warning"] * len(found)
    stated = [d for d in found if d["code"] == "import-differs"]
    found = [d for d in found if d["code"] != "import-differs"]
    got = [(d["line"], _key(d["message"])) for d in found]
    assert got == EXPECTED[(peer, name)]
    # what trains otherwise than in the peer is stated by name (tests/oracle measures it)
    names = sorted(re.findall(r"\[([a-z-]+)\]", " ".join(d["message"] for d in stated)))
    assert names == DIFFERS.get((peer, name), [])
    text = out.read_text(encoding="utf-8")
    for line, key in EXPECTED[(peer, name)]:
        if not key.startswith("optimizer"):
            assert f"# not imported: {key}: " in text and f"(line {line}: " in text
    # every setting of the trainer names the peer key (or the peer default) it came from
    trainer = text.split("- id: trainer", 1)[1].split("\nworkflows:", 1)[0]
    settings = [ln for ln in trainer.splitlines() if re.match(r"^    \w+:", ln)]
    for ln in settings:
        if not re.match(r"^    (type|dataset|distributed):", ln):
            assert "  # " in ln, ln


@pytest.mark.parametrize(("peer", "name"), CASES, ids=IDS)
def test_import_is_deterministic_and_reads_back(tmp_path: Path, peer: str, name: str) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _ = _import(tmp_path / "a", peer, name)
    second, _ = _import(tmp_path / "b", peer, name)
    assert first.read_bytes() == second.read_bytes()
    diags = Diagnostics("x")
    assert load(first, diags) is not None and not diags.items


def _validate_and_build(config: Path, out: Path) -> None:
    assert main(["validate", str(config)]) == 0
    assert main(["build", str(config), "-o", str(out)]) == 0
    assert (out / "train" / "train.py").is_file()


@pytest.mark.parametrize(("peer", "name"), CASES, ids=IDS)
def test_imported_config_validates_and_builds(tmp_path: Path, peer: str, name: str) -> None:
    config, _ = _import(tmp_path, peer, name)
    assert not _missing(config.read_text(encoding="utf-8"))
    _validate_and_build(config, tmp_path / "out")


def _plan(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["plan", str(config)]) == 0
    return capsys.readouterr().out


def test_plan_of_an_axolotl_import_shows_the_peer_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = _import(tmp_path, "axolotl", "qlora-1b.yml")
    config.write_text(config.read_text(encoding="utf-8"), encoding="utf-8")
    plan = _plan(config, capsys)
    _assert_plan(
        plan,
        model="'NousResearch/Llama-3.2-1B'",
        path="'teknium/GPT4-LLM-Cleaned'",
        per_device_train_batch_size="2",
        per_device_eval_batch_size="2",
        gradient_accumulation_steps="4",
        learning_rate="0.0002",
        lr_scheduler_type="'cosine'",
        lora_r="32",
        lora_alpha="16",
        lora_dropout="0.05",
        quantization="'nf4'",
        max_seq_length="2048",
        packing="True",
        group_by_length="False",
        optimizer="'adamw_bnb_8bit'",
        warmup_steps="10",
        evals_per_epoch="4",
        saves_per_epoch="1",
        num_epochs="1",
        attn_implementation="'flash_attention_2'",
        train_on_prompt="False",
    )


def _assert_plan(plan: str, **values: str) -> None:
    for key, value in values.items():
        pattern = rf"^\s+{re.escape(key)}\s*= {re.escape(value)}$"
        assert re.search(pattern, plan, re.M), f"{key} = {value}"


def test_plan_of_a_llama_factory_import_shows_the_peer_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = _import(tmp_path, "llama-factory", "llama3_full_sft_ds3.yaml")
    text = config.read_text(encoding="utf-8")
    assert "strategy: deepspeed" in text and "zero_stage: 3" in text
    assert "ds_z3_config.json not found beside the file; by its shipped name" in text
    config.write_text(text, encoding="utf-8")
    plan = _plan(config, capsys)
    _assert_plan(
        plan,
        model="'meta-llama/Meta-Llama-3-8B-Instruct'",
        data_files="'./data/alpaca_en_demo.json'",
        split="'train[:1000]'",
        max_seq_length="1024",
        peft_adapter="None",
        per_device_train_batch_size="1",
        per_device_eval_batch_size="1",
        gradient_accumulation_steps="2",
        learning_rate="1e-05",
        lr_scheduler_type="'cosine'",
        warmup_ratio="0.1",
        gradient_checkpointing="True",
        group_by_length="False",
        validation_split="0.1",
        dataset_num_proc="16",
        logging_steps="10",
        plot_loss="True",
        **{"distributed.strategy": "'deepspeed'", "distributed.zero_stage": "3"},
    )


def test_axolotl_defaults_that_differ_are_written_out(tmp_path: Path) -> None:
    config, _ = _import(tmp_path, "axolotl", "instruct-dpo-lora-8b.yml")
    text = config.read_text(encoding="utf-8")
    assert "task: dpo  # Axolotl: rl (line 14)" in text
    assert "prompt_column: conversation" in text and "chosen_column: chosen" in text
    assert "quantization: int8  # Axolotl: load_in_8bit (line 9)" in text
    assert "lora_target_modules: all-linear  # Axolotl: lora_target_linear (line 45)" in text
    assert "group_by_length: false  # Axolotl's default" in text
    assert "per_device_eval_batch_size: 2  # Axolotl: eval_batch_size defaults to" in text
    assert "chat_template: llama3  # Axolotl: chat_template (line 13)" in text


def test_llama_factory_defaults_that_differ_are_written_out(tmp_path: Path) -> None:
    config, _ = _import(tmp_path, "llama-factory", "llama3_lora_sft_otfq.yaml")
    text = config.read_text(encoding="utf-8")
    assert "quantization: nf4  # LLaMA-Factory: quantization_bit (line 4)" in text
    assert "lora_dropout: 0.0  # LLaMA-Factory's default lora_dropout" in text
    assert "lora_alpha: 16  # LLaMA-Factory's default lora_alpha: 2 x lora_rank" in text
    assert 'eval_strategy: "no"' in text
    assert "per_device_eval_batch_size" not in text  # no eval data: nothing to size
    assert "method: concat" in text


def test_llama_factory_dpo_reads_its_demo_pairs(tmp_path: Path) -> None:
    config, _ = _import(tmp_path, "llama-factory", "llama3_lora_dpo.yaml")
    text = config.read_text(encoding="utf-8")
    assert "task: dpo  # LLaMA-Factory: stage (line 6)" in text
    assert "beta: 0.1  # LLaMA-Factory: pref_beta (line 10)" in text
    assert "data_files: ./data/dpo_en_demo.json" in text
    assert "loss_type" not in text  # sigmoid is DPO's own default


def _peer(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


LF_BASE = """\
model_name_or_path: ./tiny
stage: sft
finetuning_type: lora
dataset: alpaca_en_demo,alpaca_zh_demo
template: qwen3
"""


def test_llama_factory_interleave_and_a_deepspeed_file_beside_the_config(
    tmp_path: Path,
) -> None:
    text = LF_BASE + (
        "mix_strategy: interleave_under\ninterleave_probs: 0.8,0.2\ndeepspeed: ds_offload.json\n"
    )
    peer = _peer(tmp_path, "peer.yaml", text)
    (tmp_path / "ds_offload.json").write_text(
        json.dumps({"zero_optimization": {"stage": 2, "offload_optimizer": {"device": "cpu"}}}),
        encoding="utf-8",
    )
    out = tmp_path / "config.yaml"
    assert (
        _json_run(["import", "llama-factory", str(peer), "-o", str(out), "--format", "json"]) == []
    )
    data = load(out, Diagnostics("x")).data  # type: ignore[union-attr]
    mix = data["workflows"][0]["jobs"][2]
    assert mix["method"] == "interleave"
    assert mix["input"]["probabilities"] == [0.8, 0.2]
    assert mix["input"]["stopping_strategy"] == "first_exhausted"
    trainer = data["components"][-1]
    assert trainer["distributed"] == {"strategy": "deepspeed", "zero_stage": 2, "offload": True}
    assert "read from ds_offload.json" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("peer", "text", "line", "col", "words"),
    [
        (
            "axolotl",
            "base_model: m\nadapter: lorra\nlearning_rate: 1e-4\ndatasets:\n"
            "  - path: x/y\n    type: alpaca\n",
            2,
            10,
            "unknown adapter 'lorra'",
        ),
        (
            "axolotl",
            "base_model: m\nmicro_batch_size: two\nlearning_rate: 1e-4\ndatasets:\n"
            "  - path: x/y\n    type: alpaca\n",
            2,
            19,
            "'micro_batch_size' must be an integer",
        ),
        (
            "axolotl",
            "base_model: m\nlearning_rate: 1e-4\ndatasets:\n  - path: x/y\n",
            4,
            5,
            "each dataset needs 'type'",
        ),
        (
            "llama-factory",
            LF_BASE.replace("stage: sft", "stage: sftt"),
            2,
            8,
            "unknown stage 'sftt'",
        ),
        (
            "llama-factory",
            LF_BASE.replace("alpaca_zh_demo", "my_data"),
            4,
            10,
            "dataset 'my_data' is not in dataset_info.json",
        ),
        (
            "llama-factory",
            LF_BASE.replace("type: lora", "type: freeze"),
            3,
            1,
            "finetuning_type: freeze has no counterpart",
        ),
    ],
)
def test_peer_values_the_peer_refuses_are_errors_at_their_place(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    peer: str,
    text: str,
    line: int,
    col: int,
    words: str,
) -> None:
    path = _peer(tmp_path, "peer.yaml", text)
    out = tmp_path / "config.yaml"
    code = main(["import", peer, str(path), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"peer.yaml:{line}:{col}: error: " in err and words in err, err
    assert "Traceback" not in err and "nothing was written" in err
    assert not out.exists()


def test_github_format_annotates_the_peer_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = PEERS / "llama-factory" / "llama3_lora_sft.yaml"
    assert (
        main(
            [
                "import",
                "llama-factory",
                str(path),
                "-o",
                str(tmp_path / "c.yaml"),
                "--format",
                "github",
            ]
        )
        == 0
    )
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "import-differs" not in ln]
    assert lines[0].startswith("::warning file=") and "line=16,col=1" in lines[0]
    assert "overwrite_cache" in lines[0]


def test_import_help_names_both_peers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    out = capsys.readouterr().out
    assert "axolotl" in out and "llama-factory" in out and "not imported" in out


AXOLOTL_LOCAL = """\
base_model: ./tiny-model
datasets:
  - path: ./data/part1.jsonl
    type: completion
  - path: ./data/part2.parquet
    type: completion
test_datasets:
  - path: ./data/eval.jsonl
    type: completion
adapter: lora
lora_target_linear: true
micro_batch_size: 2
num_epochs: 1.5
learning_rate: 1e-4
lr_scheduler: cosine
cosine_min_lr_ratio: 0.1
sdp_attention: true
hub_model_id: me/tiny-lora
wandb_project: tiny
"""


def test_axolotl_local_files_several_datasets_and_test_datasets_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    peer = _peer(tmp_path, "local.yml", AXOLOTL_LOCAL)
    out = tmp_path / "config.yaml"
    found = _json_run(["import", "axolotl", str(peer), "-o", str(out), "--format", "json"])
    assert [(d["line"], d["code"]) for d in found] == [
        (13, "import-approximate"),  # num_epochs 1.5: rounded up
        (19, "import-dropped"),  # wandb_project: the project name goes in WANDB_PROJECT
    ]
    data = load(out, Diagnostics("x")).data  # type: ignore[union-attr]
    loaders = {c["id"]: c for c in data["components"] if c.get("provider")}
    assert loaders["data-1"] == {
        "id": "data-1",
        "type": "datasets",
        "provider": "local",
        "loader": "json",
        "data_files": "./data/part1.jsonl",
        "split": "train",
    }
    assert loaders["data-2"]["loader"] == "parquet"
    assert loaders["eval-data"]["data_files"] == "./data/eval.jsonl"
    trainer = data["components"][-1]
    assert trainer["eval_dataset"] == "${input.eval_dataset}"
    assert trainer["text_column"] == "text"
    assert trainer["num_epochs"] == 2
    assert trainer["lr_scheduler_type"] == "cosine_with_min_lr"
    assert trainer["lr_scheduler_kwargs"] == {"min_lr_rate": 0.1}
    assert trainer["push_to_hub"] is True and trainer["hub_private_repo"] is True
    assert trainer["report_to"] == "wandb"
    assert trainer["save_total_limit"] == 4 and trainer["warmup_ratio"] == 0.03
    jobs = {j["id"]: j for j in data["workflows"][0]["jobs"]}
    assert jobs["mix"]["method"] == "concat"
    assert jobs["train"]["input"] == {
        "dataset": "${jobs.mix.output}",
        "eval_dataset": "${jobs.load-eval-data.output}",
    }
    _validate_and_build(out, tmp_path / "out")
    plan = _plan(out, capsys)
    _assert_plan(
        plan,
        attn_implementation="'sdpa'",
        lora_target_modules="'all-linear'",
        lora_dropout="0.0",
        per_device_train_batch_size="2",
        save_strategy="'epoch'",
        optimizer="'adamw_torch_fused'",
        hub_model_id="'me/tiny-lora'",
    )


def test_llama_factory_eval_dataset_pretraining_and_hub_names(tmp_path: Path) -> None:
    text = (
        "model_name_or_path: ./tiny\nstage: pt\nfinetuning_type: full\n"
        "dataset: c4_demo,alpaca_en\neval_dataset: wiki_demo\ntemplate: llama3\n"
        "neat_packing: true\n"
    )
    peer = _peer(tmp_path, "pt.yaml", text)
    out = tmp_path / "config.yaml"
    found = _json_run(["import", "llama-factory", str(peer), "-o", str(out), "--format", "json"])
    assert [(d["line"], d["code"], _key(d["message"])) for d in found] == [
        (4, "import-approximate", "dataset"),  # alpaca_en is not plain text like c4_demo
        (6, "import-dropped", "template"),  # pretraining trains whole texts
        (7, "import-approximate", "neat_packing"),
    ]
    data = load(out, Diagnostics("x")).data  # type: ignore[union-attr]
    comps = {c["id"]: c for c in data["components"]}
    assert comps["c4_demo"]["data_files"] == "./data/c4_demo.jsonl"
    assert comps["alpaca_en"] == {
        "id": "alpaca_en",
        "type": "datasets",
        "provider": "huggingface",
        "path": "llamafactory/alpaca_en",
        "split": "train",
    }
    assert comps["eval-wiki_demo"]["loader"] == "text"
    trainer = comps["trainer"]
    assert trainer["text_column"] == "text" and trainer["packing"] is True
    assert trainer["peft_adapter"] is None
    jobs = {j["id"]: j for j in data["workflows"][0]["jobs"]}
    assert jobs["train"]["input"] == {
        "dataset": "${jobs.mix.output}",
        "eval_dataset": "${jobs.load-eval-wiki_demo.output}",
    }


@pytest.mark.parametrize(
    ("extra", "line", "words"),
    [
        ("interleave_probs: 0.5,0.5\n", 6, "only valid for interleaved mixing"),
        (
            "mix_strategy: interleave_over\ninterleave_probs: 0.5,0.3,0.2\n",
            7,
            "3 interleave_probs for 2 datasets",
        ),
        (
            "mix_strategy: interleave_over\ninterleave_probs: 0.5,x\n",
            7,
            "must be numbers separated by commas",
        ),
        ("train_on_prompt: true\nmask_history: true\n", 7, "incompatible with 'train_on_prompt'"),
    ],
)
def test_llama_factory_mixing_and_masking_mistakes_it_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, line: int, words: str
) -> None:
    path = _peer(tmp_path, "peer.yaml", LF_BASE + extra)
    assert main(["import", "llama-factory", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"peer.yaml:{line}:" in err and words in err and "Traceback" not in err, err


def test_import_runs_as_a_command_and_never_overwrites_the_peer_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    peer = tmp_path / "lora.yml"
    peer.write_bytes((PEERS / "axolotl" / "lora-1b.yml").read_bytes())
    run = subprocess.run(
        [sys.executable, "-m", "mccompile", "import", "axolotl", str(peer)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("# Imported from the Axolotl config lora.yml")
    assert "lora.yml:5:1: warning: Axolotl key 'strict' is not imported" in run.stderr
    same = subprocess.run(
        [sys.executable, "-m", "mccompile", "import", "axolotl", str(peer), "-o", str(peer)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert same.returncode == 2 and "is the peer's config itself" in same.stderr
    assert peer.read_bytes() == (PEERS / "axolotl" / "lora-1b.yml").read_bytes()


def test_smaller_mappings(tmp_path: Path) -> None:
    axolotl = _peer(
        tmp_path,
        "a.yml",
        "base_model: m\nlearning_rate: 1e-4\ndatasets:\n  - path: x/y\n    type: alpaca\n"
        "bf16: full\nadapter: lora\nlora_target_modules: q_proj\npeft_use_dora: true\n"
        "tokens: ['<tool>']\n",
    )
    out = tmp_path / "a.yaml"
    found = _json_run(["import", "axolotl", str(axolotl), "-o", str(out), "--format", "json"])
    assert [(d["line"], d["code"]) for d in found] == [(6, "import-approximate")]
    trainer = load(out, Diagnostics("x")).data["components"][-1]  # type: ignore[union-attr]
    assert trainer["bf16"] is True and trainer["use_dora"] is True
    assert trainer["lora_target_modules"] == ["q_proj"]
    assert trainer["added_tokens"] == ["<tool>"]
    factory = _peer(tmp_path, "f.yaml", LF_BASE + "add_special_tokens: <think>,</think>\n")
    out = tmp_path / "f-out.yaml"
    assert (
        _json_run(["import", "llama-factory", str(factory), "-o", str(out), "--format", "json"])
        == []
    )
    trainer = load(out, Diagnostics("x")).data["components"][-1]  # type: ignore[union-attr]
    assert trainer["added_tokens"] == ["<think>", "</think>"]
    assert trainer["chat_template"] == "qwen3"


@pytest.mark.parametrize(
    ("peer", "text", "words"),
    [
        ("axolotl", "model_name_or_path: m\nstage: sft\n", "looks like a LLaMA-Factory config"),
        ("llama-factory", "base_model: m\n", "looks like an Axolotl config"),
        ("axolotl", "- a\n- b\n", "the Axolotl config must be a mapping"),
        (
            "axolotl",
            "base_model: m\nlearning_rate: .nan\ndatasets:\n  - path: x/y\n    type: alpaca\n",
            "cannot be written so that it reads back",
        ),
    ],
)
def test_files_that_are_not_this_peers_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], peer: str, text: str, words: str
) -> None:
    path = _peer(tmp_path, "peer.yaml", text)
    assert main(["import", peer, str(path)]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err


def test_a_regex_string_of_lora_target_modules_is_refused(tmp_path: Path) -> None:
    """PEFT reads one string as a regular expression: a one-item list would match nothing."""
    peer = tmp_path / "a.yml"
    peer.write_text(
        "base_model: m\nadapter: lora\nlearning_rate: 0.0001\n"
        "lora_target_modules: '.*(q|v)_proj'\n"
        "datasets:\n  - path: d.jsonl\n    type: alpaca\n",
        encoding="utf-8",
    )
    assert main(["import", "axolotl", str(peer), "-o", str(tmp_path / "c.yaml")]) == 2
    assert not (tmp_path / "c.yaml").exists()


def test_an_absolute_dataset_dir_stays_absolute(tmp_path: Path) -> None:
    peer = tmp_path / "lf.yaml"
    peer.write_text(
        "model_name_or_path: m\ndataset: alpaca_en_demo\ndataset_dir: /srv/data\n",
        encoding="utf-8",
    )
    out = tmp_path / "c.yaml"
    assert main(["import", "llama-factory", str(peer), "-o", str(out)]) == 0
    assert "data_files: /srv/data/alpaca_en_demo.json" in out.read_text(encoding="utf-8")
