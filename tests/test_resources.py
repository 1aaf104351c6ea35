"""The resource plan against the models transformers and peft build (meta device, no weights)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mccompile.plan import resources as res
from mccompile.plan.architectures import distinct

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

ARCHS = distinct()
ROOT = Path(__file__).resolve().parents[1]


def meta_model(arch, dtype=None):
    cfg = transformers.AutoConfig.for_model(**arch.config_dict())
    with torch.device("meta"):
        return transformers.AutoModelForCausalLM.from_config(cfg, dtype=dtype)


@pytest.fixture(scope="module")
def built():
    return {}


def _model(built, name):
    if name not in built:
        built[name] = meta_model(ARCHS[name])
    return built[name]


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_parameter_count_equals_built_model(built, name):
    model = _model(built, name)
    assert res.count_parameters(res.modules(ARCHS[name])) == sum(
        p.numel() for p in model.parameters()
    )


def _targets(arch):
    if arch.model_type == "phi3":
        return ["qkv_proj", "down_proj"]
    return ["q_proj", "v_proj"]


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_lora_trainable_equals_peft(name):
    arch = ARCHS[name]
    mods = res.modules(arch)
    for r, targets in ((8, "all-linear"), (16, _targets(arch))):
        model = meta_model(arch)
        cfg = peft.LoraConfig(r=r, lora_alpha=16, target_modules=targets, task_type="CAUSAL_LM")
        with torch.device("meta"):
            wrapped = peft.get_peft_model(model, cfg)
        trainable, total = wrapped.get_nb_trainable_parameters()
        assert res.lora_trainable(mods, r, targets) == trainable, (name, r, targets)
        assert res.count_parameters(mods) == total - trainable


def test_dora_and_modules_to_save_equal_peft():
    arch = ARCHS["qwen/qwen3-0.6b"]
    mods = res.modules(arch)
    model = meta_model(arch)
    cfg = peft.LoraConfig(
        r=16,
        target_modules="all-linear",
        use_dora=True,
        modules_to_save=["lm_head"] if not arch.tie_word_embeddings else ["model.norm"],
        task_type="CAUSAL_LM",
    )
    with torch.device("meta"):
        wrapped = peft.get_peft_model(model, cfg)
    trainable, _ = wrapped.get_nb_trainable_parameters()
    assert trainable == res.lora_trainable(
        mods, 16, "all-linear", use_dora=True, modules_to_save=list(cfg.modules_to_save)
    )


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_weight_bytes_equal_built_model(name):
    arch = ARCHS[name]
    for bf16, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        model = meta_model(arch, dtype=dtype)
        built = sum(p.numel() * p.element_size() for p in model.parameters())
        mp = res.estimate_memory(arch, res.Setup(bf16=bf16), 1)
        assert next(p for p in mp.parts if p.name == "weights").bytes == built


def test_adapter_and_adamw_bytes_equal_built_model():
    arch = ARCHS["meta-llama/llama-3.2-1b"]
    model = meta_model(arch, dtype=torch.bfloat16)
    with torch.device("meta"):
        wrapped = peft.get_peft_model(
            model, peft.LoraConfig(r=16, target_modules="all-linear", task_type="CAUSAL_LM")
        )
    trainable = [p for p in wrapped.parameters() if p.requires_grad]
    adapter = sum(p.numel() * p.element_size() for p in trainable)
    assert {p.dtype for p in trainable} == {torch.float32}  # peft's autocast_adapter_dtype
    mp = res.estimate_memory(arch, res.Setup(bf16=True, lora=True, lora_r=16), 1)
    parts = {p.name: p.bytes for p in mp.parts}
    assert parts["adapter weights"] == adapter
    assert parts["gradients"] == adapter
    assert parts["optimizer states"] == 2 * adapter  # AdamW: exp_avg + exp_avg_sq, float32


@pytest.mark.parametrize("double_quant", [True, False])
def test_bnb4_bytes_equal_bitsandbytes(double_quant):
    bnbf = pytest.importorskip("bitsandbytes.functional")
    w = torch.randn(384, 320, dtype=torch.bfloat16)
    q, st = bnbf.quantize_4bit(
        w,
        blocksize=64,
        compress_statistics=double_quant,
        quant_type="nf4",
        quant_storage=torch.bfloat16,
    )

    def nbytes(t):
        return t.numel() * t.element_size()

    got = nbytes(q) + nbytes(st.absmax) + nbytes(st.code)
    if st.nested:
        got += nbytes(st.state2.absmax) + nbytes(st.offset)  # state2.code: shared, counted once
    assert res.bnb4_bytes(w.numel(), double_quant) == got


@pytest.mark.parametrize("optim", ["adamw_torch", "adafactor", "sgd", "adagrad", "rmsprop"])
@pytest.mark.parametrize("lora", [False, True])
def test_optimizer_state_bytes_equal_transformers_optimizer(optim, lora):
    """One real step of the optimizer transformers builds for ``optim`` on a tiny float32 model."""
    from mccompile.plan.architectures import Architecture

    arch = Architecture("llama", 96, 32, 64, 2, 4, 2, False)
    cfg = transformers.AutoConfig.for_model(**arch.config_dict())
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    if lora:
        model = peft.get_peft_model(
            model, peft.LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM")
        )
    # what Trainer.get_optimizer_cls_and_kwargs does (without importing the Trainer module)
    from transformers import trainer_optimizer as to

    args = transformers.TrainingArguments(output_dir="unused", optim=optim, report_to="none")
    ctx = to.OptimizerContext(
        args=args,
        model=model,
        optimizer_kwargs={"lr": args.learning_rate},
        adam_kwargs={"betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon},
        optim_args=to._parse_optim_args(args.optim_args),
    )
    cls, kwargs = to._OPTIMIZER_HANDLERS[args.optim](ctx)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = cls(params, **kwargs)
    model(
        input_ids=torch.tensor([[1, 2, 3, 4]]), labels=torch.tensor([[1, 2, 3, 4]])
    ).loss.backward()
    opt.step()
    states = sum(
        t.numel() * t.element_size()
        for st in opt.state.values()
        for t in st.values()
        if torch.is_tensor(t) and t.dim() > 0  # step counters are scalars: not counted
    )
    setup = res.Setup(lora=lora, lora_r=4, optimizer=optim)
    part = next(
        p for p in res.estimate_memory(arch, setup, 1).parts if p.name == "optimizer states"
    )
    assert part.bytes == states


def test_architecture_from_local_folder_and_hub_cache(tmp_path, monkeypatch):
    arch = ARCHS["qwen/qwen2.5-0.5b"]
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(arch.config_dict()))
    found = res.find_architecture(str(folder))
    assert not isinstance(found, str) and found.hidden_size == 896
    assert "config.json" in found.source
    snap = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text(json.dumps(arch.config_dict()))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    found = res.find_architecture("acme/tiny")
    assert not isinstance(found, str) and found.source.startswith("hub cache")
    table = res.find_architecture("Qwen/Qwen2.5-0.5B-Instruct")
    assert not isinstance(table, str) and table.source.startswith("built-in table")
    unknown = res.find_architecture("acme/unknown-model")
    assert isinstance(unknown, str) and "cannot know" in unknown


def test_gpu_memory_names():
    assert res.parse_gpu_memory("80GB") == ("80GB", 80 * 10**9)
    assert res.parse_gpu_memory("H100")[1] == int(79.6 * res.GiB)
    assert res.parse_gpu_memory("A100-40GB")[1] == int(39.4 * res.GiB)
    assert res.parse_gpu_memory("warp-drive") is None


PLAN_CONFIG = """\
components:
  - id: t
    type: model-trainer
    model: {model}
    dataset: ${{input.dataset}}
    peft_adapter: lora
    lora_r: 16
    bf16: true
    per_device_train_batch_size: 8
    gradient_accumulation_steps: 4
    max_seq_length: 2048
{distributed}"""


def test_plan_prints_resources_and_fits(tmp_path, capsys):
    from mccompile.cli import main

    cfg = tmp_path / "c.yaml"
    ddp = "    distributed:\n      strategy: ddp\n"
    cfg.write_text(PLAN_CONFIG.format(model="meta-llama/Llama-3.1-8B", distributed=ddp))
    assert main(["plan", str(cfg), "--gpu-memory", "A100-40GB"]) == 0
    out = capsys.readouterr().out
    assert "parameters: 8,030,261,248 (8.03B) total, 41,943,040 (41.9M) trainable" in out
    assert "processes: auto = one per GPU found at launch" in out
    assert "effective batch 8 × 4 × 2 = 64 sequences, at most 131,072 tokens" in out
    assert "on A100-40GB (39.4 GiB): does not fit" in out
    assert "gradient_checkpointing: true" in out and "— fits" in out


def test_plan_says_when_it_cannot_know(tmp_path, capsys):
    from mccompile.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(PLAN_CONFIG.format(model="acme/never-heard-of", distributed=""))
    assert main(["plan", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "size unknown" in out and "cannot know" in out


def test_plan_reads_a_local_model_folder(tmp_path, capsys, tiny_model):
    from mccompile.cli import main

    cfg = tmp_path / "c.yaml"
    none = "    distributed:\n      strategy: none\n"
    cfg.write_text(PLAN_CONFIG.format(model=str(tiny_model), distributed=none))
    assert main(["plan", str(cfg), "--gpu-memory", "T4"]) == 0
    out = capsys.readouterr().out
    assert "with 1 process: effective batch 8 × 4 × 1 = 32 sequences" in out
    assert "with 2 processes" not in out  # strategy none: one process
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model)
    assert f"parameters: {sum(p.numel() for p in model.parameters()):,} total" in out
    assert "on T4 (14.6 GiB): fits" in out


def _alive_after_forward(model, batch):
    """Bytes of the storages the forward pass created that are alive after it (CPU)."""
    from torch.multiprocessing.reductions import StorageWeakRef
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    before = {t.untyped_storage().data_ptr() for t in model.parameters()}
    before |= {t.untyped_storage().data_ptr() for t in batch.values() if torch.is_tensor(t)}
    seen = {}

    class Track(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    st = t.untyped_storage()
                    key = st.data_ptr()
                    if key not in before and (key not in seen or seen[key][0].expired()):
                        seen[key] = (StorageWeakRef(st), st.nbytes())
            return out

    with Track():
        out = model(**batch)
    return sum(n for ref, n in seen.values() if not ref.expired()), out


@pytest.mark.parametrize(
    ("attention", "lora", "gc"), [("sdpa", False, False), ("eager", True, True)]
)
def test_activation_estimate_within_ten_percent_of_cpu_measurement(attention, lora, gc):
    from mccompile.plan.architectures import Architecture

    arch = Architecture("llama", 1000, 64, 128, 2, 4, 2, False)
    cfg = transformers.AutoConfig.for_model(**arch.config_dict())
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation=attention)
    if lora:
        model = peft.get_peft_model(
            model,
            peft.LoraConfig(
                r=16, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
            ),
        )
    if gc:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    ids = torch.randint(4, 1000, (2, 96))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
    measured, out = _alive_after_forward(model, {**batch, "use_cache": False})
    setup = res.Setup(
        lora=lora,
        lora_r=16,
        lora_dropout=0.05,
        batch=2,
        seq=96,
        checkpointing=gc,
        attention=attention,
        device="cpu",
    )
    parts = res.estimate_memory(arch, setup, 1).parts
    estimate = next(p.bytes for p in parts if p.name == "activations")
    assert 0.9 <= estimate / measured <= 1.1, (estimate, measured)
    out.loss.backward()  # what was measured is what backward uses


@pytest.mark.parametrize("gc", [False, True])
def test_joined_rows_under_sdpa_within_five_percent_of_cpu_measurement(gc):
    """Packed rows of a batch of 4 x 128, joined by TRL into one sequence of 512 tokens with
    position ids that restart at each example and no attention mask: sdpa runs under a block
    mask (the key / value heads repeated, the mask kept)."""
    from mccompile.plan.architectures import Architecture

    arch = Architecture("llama", 1000, 64, 128, 2, 4, 2, False)
    cfg = transformers.AutoConfig.for_model(**arch.config_dict())
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa")
    if gc:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    lengths = [100, 28, 64, 64, 128, 50, 78]
    ids = torch.randint(4, 1000, (1, sum(lengths)))
    positions = torch.cat([torch.arange(n) for n in lengths])[None]
    batch = {"input_ids": ids, "position_ids": positions, "labels": ids, "use_cache": False}
    measured, out = _alive_after_forward(model, batch)
    setup = res.Setup(batch=4, seq=128, checkpointing=gc, joined=True, device="cpu")
    parts = res.estimate_memory(arch, setup, 1).parts
    estimate = next(p.bytes for p in parts if p.name == "activations")
    assert 0.95 <= estimate / measured <= 1.05, (estimate, measured)
    unjoined = res.estimate_memory(arch, res.Setup(batch=4, seq=128, checkpointing=gc), 1).parts
    assert estimate > next(p.bytes for p in unjoined if p.name == "activations")
    out.loss.backward()


def test_plan_says_what_packed_rows_cost_without_a_varlen_kernel(tmp_path, capsys):
    from mccompile.cli import main

    config = tmp_path / "c.yaml"
    trainer = (
        "components:\n  - id: t\n    type: model-trainer\n    model: Qwen/Qwen2.5-0.5B\n"
        "    text_column: text\n    per_device_train_batch_size: 8\n"
        "    max_seq_length: 4096\n    bf16: true\n"
    )
    config.write_text(trainer + "    packing: true\n")
    assert main(["plan", str(config)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("attention:"))
    assert "packed rows take a variable-length kernel where the GPU has one" in line
    extra = float(line.split("+ ")[1].split(" GiB")[0])
    # the additive bf16 mask of 32,768² per layer, 24 layers, and the repeated key / value heads
    assert extra > 24 * 2 * 32768**2 / 2**30
    config.write_text(trainer + "    packing: auto\n")
    assert main(["plan", str(config)]) == 0
    assert "without one, packing: auto does not pack" in capsys.readouterr().out
    config.write_text(trainer + "    packing: true\n    attn_implementation: sdpa\n")
    assert main(["plan", str(config)]) == 0
    out = capsys.readouterr().out
    assert "attention:" not in out
    assert "a batch of 8 × 4096 joined: 1 × 32768 tokens, sdpa" in out


def test_plan_is_plain_data(tmp_path):
    from mccompile.frontend import compile_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text(PLAN_CONFIG.format(model="Qwen/Qwen3-8B", distributed=""))
    config, _ = compile_config(str(cfg), str(cfg))
    (plan,) = res.plan_config(config, res.parse_gpu_memory("H100"))
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["total_params"] == res.count_parameters(res.modules(ARCHS["qwen/qwen3-8b"]))
    assert data["memory"]["1"]["parts"][0]["name"] == "weights"


def test_bundle_readme_shows_the_plan_for_a_table_model(tmp_path):
    from mccompile.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(PLAN_CONFIG.format(model="meta-llama/Llama-3.2-1B", distributed=""))
    assert main(["build", str(cfg), "-o", str(tmp_path / "out")]) == 0
    readme = (tmp_path / "out" / "t" / "README.md").read_text()
    assert "## Resources" in readme
    assert "1,235,814,400 (1.24B) parameters" in readme
    assert "| 1 | 8 × 4 × 1 = 32 | 65,536 |" in readme


def test_lora_regex_targets_equal_peft():
    arch = ARCHS["qwen/qwen3-0.6b"]
    target = r".*\.(q|v)_proj"  # peft reads a string as a regular expression
    model = meta_model(arch)
    with torch.device("meta"):
        wrapped = peft.get_peft_model(
            model, peft.LoraConfig(r=8, target_modules=target, task_type="CAUSAL_LM")
        )
    assert (
        res.lora_trainable(res.modules(arch), 8, target) == wrapped.get_nb_trainable_parameters()[0]
    )
