"""Axolotl configs (axolotl train config.yml) into mccompile configs.

Axolotl's own defaults (src/axolotl/utils/schemas/training.py, peft.py, config.py) that
differ from mccompile's are written out, so the imported config trains what Axolotl would:
micro_batch_size 1, num_epochs 1, optimizer adamw_torch_fused, lr_scheduler cosine,
lora_dropout 0.0, sequence_len 512, group_by_length off (random batches),
train_on_inputs false, eval_batch_size = micro_batch_size, one checkpoint per epoch.
"""

from __future__ import annotations

import re
from typing import Any

from mccompile.importers.common import (
    Block,
    Entry,
    Output,
    Peer,
    local_loader,
    read_deepspeed,
    short,
)

ADAPTERS = ("lora", "qlora")
RL = {"dpo": ("dpo", None), "ipo": ("dpo", "ipo"), "kto": ("kto", None), "orpo": ("orpo", None)}
RL_UNSUPPORTED = ("simpo", "grpo", "gdpo", "ebft")
OPTIMIZERS = {
    "adamw_torch": "adamw_torch",
    "adamw_torch_fused": "adamw_torch_fused",
    "adamw_8bit": "adamw_8bit",
    "adamw_bnb_8bit": "adamw_bnb_8bit",
    "adafactor": "adafactor",
    "lomo": "lomo",
    "galore_adamw": "galore_adamw",
    "galore_adamw_8bit": "galore_adamw_8bit",
    "grokadamw": "grokadamw",
    "stableadamw": "stableadamw",
    "schedule_free_radamw": "schedule_free_radamw",
    "sgd": "sgd",
    "adagrad": "adagrad",
    "rmsprop": "rmsprop",
}
# the same update rule, with optimizer state paged to CPU memory under pressure
PAGED = {"paged_adamw_8bit": "adamw_bnb_8bit", "paged_adamw_32bit": "adamw_torch"}
SCHEDULERS = (
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
)
CHAT_TEMPLATES = {
    "chatml": "chatml",
    "llama3": "llama3",
    "qwen3": "qwen3",
    "gemma3": "gemma3",
    "alpaca": "alpaca",
    "mistral": "mistral",
    "tokenizer_default": "tokenizer",
}

# the role names Axolotl's chat_template datasets accept without a roles mapping
DEFAULT_ROLES = {
    "user": ["human", "user"],
    "assistant": ["gpt", "assistant"],
    "system": ["system"],
    "tool": ["tool"],
}

# straight renames: Axolotl key -> (ours, accepted Python types)
SIMPLE: dict[str, tuple[str, tuple[type, ...]]] = {
    "revision_of_model": ("model_revision", (str,)),
    "trust_remote_code": ("trust_remote_code", (bool,)),
    "learning_rate": ("learning_rate", (float,)),
    "gradient_accumulation_steps": ("gradient_accumulation_steps", (int,)),
    "max_steps": ("max_steps", (int,)),
    "warmup_steps": ("warmup_steps", (int,)),
    "warmup_ratio": ("warmup_ratio", (float,)),
    "weight_decay": ("weight_decay", (float,)),
    "max_grad_norm": ("max_grad_norm", (float,)),
    "logging_steps": ("logging_steps", (int,)),
    "eval_steps": ("eval_steps", (int,)),
    "save_steps": ("save_steps", (int,)),
    "evals_per_epoch": ("evals_per_epoch", (int,)),
    "saves_per_epoch": ("saves_per_epoch", (int,)),
    "save_total_limit": ("save_total_limit", (int,)),
    "seed": ("seed", (int,)),
    "gradient_checkpointing": ("gradient_checkpointing", (bool,)),
    "output_dir": ("output_dir", (str,)),
    "neftune_noise_alpha": ("neftune_noise_alpha", (float,)),
    "hub_model_id": ("hub_model_id", (str,)),
    "push_to_hub": ("push_to_hub", (bool,)),
    "run_name": ("run_name", (str,)),
    "dataset_processes": ("dataset_num_proc", (int,)),
    "dataloader_num_workers": ("dataloader_num_workers", (int,)),
    "use_dora": ("use_dora", (bool,)),
    "peft_use_dora": ("use_dora", (bool,)),
    "peft_use_rslora": ("use_rslora", (bool,)),
    "lora_modules_to_save": ("lora_modules_to_save", (list,)),
    "torch_compile": ("torch_compile", (bool,)),
    "tf32": ("tf32", (bool,)),
    "ddp_timeout": ("ddp_timeout", (int,)),
    "resume_from_checkpoint": ("resume_from_checkpoint", (str,)),
    "lora_r": ("lora_r", (int,)),
    "lora_alpha": ("lora_alpha", (int, float)),
    "lora_dropout": ("lora_dropout", (float,)),
}

REASONS = {
    "strict": "Axolotl's own check of unknown keys; mccompile always refuses unknown keys",
    "dataset_prepared_path": "mccompile prepares the data in the program (prepare.py caches it)",
    "pad_to_sequence_len": "padding every batch to sequence_len changes memory, not what is"
    " trained; mccompile pads to the longest example",
    "eval_sample_packing": "the eval data is packed exactly when the training data is"
    " (TRL's eval_packing follows packing)",
    "model_type": "the model loads with AutoModelForCausalLM, which reads its class from the"
    " model's config",
    "tokenizer_type": "the tokenizer loads with AutoTokenizer",
    "base_model_config": "the model's config is read from the model",
    "loss_watchdog_threshold": "no loss watchdog",
    "loss_watchdog_patience": "no loss watchdog",
    "gradient_checkpointing_kwargs": "gradient checkpointing is non-reentrant in the generated"
    " program",
    "plugins": "no Axolotl plugins; use_liger_kernel is the Liger kernels",
    "liger_rope": "use_liger_kernel applies all of Liger's kernels (set from plugins)",
    "liger_rms_norm": "use_liger_kernel applies all of Liger's kernels",
    "liger_glu_activation": "use_liger_kernel applies all of Liger's kernels",
    "liger_fused_linear_cross_entropy": "use_liger_kernel applies all of Liger's kernels",
    "low_cpu_mem_usage": "transformers loads with low memory use already",
    "wandb_entity": "set WANDB_ENTITY in the environment",
    "wandb_watch": "set WANDB_WATCH in the environment",
    "wandb_log_model": "set WANDB_LOG_MODEL in the environment",
    "wandb_project": "set WANDB_PROJECT in the environment (report_to: wandb is imported)",
    "debug": "no debug mode",
    "xformers_attention": "no xformers attention",
    "lora_model_dir": "no starting adapter",
    "hub_strategy": "the model is pushed once, after saving",
    "special_tokens": "",
}


def import_config(peer: Peer) -> Output:
    out = Output()
    trainer = Block()
    out.header = [
        f"Imported from the Axolotl config {peer.path.name} by mccompile import.",
        "Each setting names the Axolotl key (and line) it came from; Axolotl's defaults that",
        "differ from mccompile's are written out; keys without a counterpart are listed as",
        "'not imported'.",
    ]
    loaders, fmt = _datasets(peer)
    evals, _ = _datasets(peer, "test_datasets", "eval-data")
    trainer.set("id", "trainer")
    trainer.set("type", "model-trainer")
    _task(peer, trainer)
    model = peer.take("base_model", (str,))
    if model is None and "base_model" not in peer.invalid_keys():
        peer.invalid(("base_model",), "'base_model' is required")
    trainer.set("model", model or "", peer.src("base_model"))
    trainer.set("dataset", "${input.dataset}")
    if evals:
        trainer.set("eval_dataset", "${input.eval_dataset}", peer.src("test_datasets"))
    for key, value, comment in fmt:
        trainer.set(key, value, comment)
    _training(peer, trainer)
    _adapter(peer, trainer)
    _precision(peer, trainer)
    _schedule(peer, trainer)
    _distributed(peer, trainer)
    _tokens(peer, trainer)
    plugins = peer.data.get("plugins")
    if isinstance(plugins, list) and "axolotl.integrations.liger.LigerPlugin" in plugins:
        trainer.set("use_liger_kernel", True, peer.src("plugins") + ": LigerPlugin")
        if len(plugins) == 1:
            peer.used.add("plugins")
    peer.keep_task_keys(trainer)
    unset = peer.rest(REASONS, trainer)
    trainer.notes += peer.not_imported
    if unset:
        trainer.notes.append("unset in the Axolotl file (null): " + ", ".join(unset))
    out.components += [*loaders, *evals, trainer]
    _workflow(peer, out, loaders, evals)
    return out


def _datasets(
    peer: Peer, key: str = "datasets", prefix: str = "data"
) -> tuple[list[Block], list[tuple[str, Any, str]]]:
    items = peer.take(key, (list,))
    if not items:
        if key == "datasets" and not peer.diags.has_error_at((key,)):
            peer.invalid((key,), "'datasets' is required (a list of datasets)")
        return [], []
    blocks: list[Block] = []
    fmt: list[tuple[str, Any, str]] = []
    chat = peer.data.get("chat_template")
    for i, item in enumerate(items):
        at = (key, i)
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            peer.invalid(at, "each dataset needs 'path' (a hub id or a local file)")
            continue
        block = Block()
        block.set("id", f"{prefix}-{i + 1}" if len(items) > 1 else prefix)
        block.set("type", "datasets")
        path = item["path"]
        src = f"Axolotl: {key}[{i}].path (line {peer.line(*at, 'path')})"
        ds_type = item.get("ds_type")
        loader = local_loader(path) or (
            ds_type if ds_type in ("json", "csv", "parquet", "text") else None
        )
        local = loader is not None or path.startswith(("./", "../", "/"))
        if local:
            block.set("provider", "local", src)
            block.set(
                "loader",
                loader or "json",
                "by the file's extension" if loader else "Axolotl reads local folders of JSON",
            )
            block.set("data_files", item.get("data_files") or path, src)
        else:
            block.set("provider", "huggingface", src)
            block.set("path", path, src)
            if isinstance(item.get("data_files"), (str, list)):
                block.set("data_files", item["data_files"], _where(peer, key, i, "data_files"))
        for name in ("name", "split", "revision"):
            if item.get(name) is not None:
                block.set(
                    name, item[name], f"Axolotl: {key}[{i}].{name} (line {peer.line(*at, name)})"
                )
        if not block.has("split"):
            block.set("split", "train", "Axolotl's default split")
        kind = item.get("type")
        ds_fmt = _format(peer, key, i, item, kind, chat)
        if i == 0:
            fmt = ds_fmt
        elif [f[:2] for f in ds_fmt] != [f[:2] for f in fmt]:
            peer.diags.warning(
                "import-approximate",
                f"Axolotl key '{key}[{i}]' has another format than {key}[0]; one trainer takes one"
                " format, the first dataset's is used",
                at,
                peer.doc.kpos(at),
            )
        known = {
            "path",
            "type",
            "name",
            "split",
            "revision",
            "data_files",
            "ds_type",
            "field_messages",
            "message_property_mappings",
            "message_field_role",
            "message_field_content",
            "roles",
            "field_chosen",
            "field_rejected",
            "field_prompt",
            "field",
            "chat_template",
        }
        for name, value in item.items():
            if name not in known and value is not None:
                peer.drop((*at, name), "mccompile has no counterpart", block)
        blocks.append(block)
    return blocks, fmt


def _format(
    peer: Peer, key: str, i: int, item: dict[str, Any], kind: Any, chat: Any
) -> list[tuple[str, Any, str]]:
    at = (key, i)
    src = f"Axolotl: {key}[{i}].type (line {peer.line(*at, 'type')})"
    if kind is None:
        peer.invalid(at, "each dataset needs 'type' (alpaca, chat_template, completion, ...)")
        return []
    if isinstance(kind, dict):
        peer.unsupported(
            key,
            f"{key}[{i}].type: a custom prompt format"
            " (a mapping) has no counterpart; write its template as chat_template",
        )
        return []
    if not isinstance(kind, str):
        peer.invalid((*at, "type"), f"'type' must be a string, got {short(kind)}")
        return []
    if kind == "alpaca":
        return [
            ("chat_template", "alpaca", f"{src}: the Alpaca prompt on instruction / input / output")
        ]
    if kind == "completion":
        return [("text_column", item.get("field") or "text", f"{src}: raw text, loss on all")]
    if kind == "sharegpt":
        return [("messages_column", "conversations", f"{src}: ShareGPT {{from, value}} turns")]
    base = kind.split(".")[0]
    if base != "chat_template":
        peer.unsupported(
            key,
            f"{key}[{i}].type '{kind}' has no counterpart"
            " (alpaca, completion, sharegpt and chat_template are imported)",
        )
        return []
    rl = peer.data.get("rl")
    fields: list[tuple[str, Any, str]] = []
    messages = item.get("field_messages") or ("messages" if not rl else None)
    if rl and item.get("field_chosen"):
        if messages:
            fields.append(("prompt_column", messages, _where(peer, key, i, "field_messages")))
        fields.append(("chosen_column", item["field_chosen"], _where(peer, key, i, "field_chosen")))
        fields.append(
            (
                "rejected_column",
                item.get("field_rejected") or "rejected",
                _where(peer, key, i, "field_rejected"),
            )
        )
    elif messages:
        fields.append(
            (
                "messages_column",
                messages,
                f"Axolotl: {key}[{i}].field_messages"
                + (
                    f" (line {peer.line(*at, 'field_messages')})"
                    if "field_messages" in item
                    else ": Axolotl's default"
                ),
            )
        )
    mapping = item.get("message_property_mappings") or {}
    if not isinstance(mapping, dict):
        peer.invalid((*at, "message_property_mappings"), "must be a mapping")
        mapping = {}
    role = mapping.get("role") or item.get("message_field_role") or "role"
    content = mapping.get("content") or item.get("message_field_content") or "content"
    if (role, content) != ("role", "content"):
        fields.append(
            (
                "message_fields",
                {"role": role, "content": content},
                _where(peer, key, i, "message_property_mappings"),
            )
        )
    roles = item.get("roles")
    if isinstance(roles, dict):
        same = all(v == [k] for k, v in roles.items())
        if not same:
            fields.append(
                ("roles", roles, f"Axolotl: {key}[{i}].roles (line {peer.line(*at, 'roles')})")
            )
    elif roles is None and (role, content) != ("role", "content"):
        # other field names usually mean ShareGPT's role names: Axolotl's defaults take both
        fields.append(("roles", DEFAULT_ROLES, "Axolotl's default role names"))
    ds_chat = item.get("chat_template")
    if ds_chat is not None:
        fields.append(
            (
                "chat_template",
                _chat_name(peer, (*at, "chat_template"), ds_chat),
                _where(peer, key, i, "chat_template"),
            )
        )
    return fields


def _where(peer: Peer, key: str, i: int, name: str) -> str:
    return f"Axolotl: {key}[{i}].{name} (line {peer.line(key, i, name)})"


def _chat_name(peer: Peer, path: tuple[str | int, ...], value: Any) -> str:
    if isinstance(value, str) and value in CHAT_TEMPLATES:
        return CHAT_TEMPLATES[value]
    if isinstance(value, str) and value == "jinja":
        jinja = peer.data.get("chat_template_jinja")
        peer.used.add("chat_template_jinja")
        if isinstance(jinja, str):
            return jinja
    peer.diags.warning(
        "import-approximate",
        f"Axolotl key '{'.'.join(map(str, path))}': chat_template '{short(value)}' is not one"
        " of mccompile's built-ins; the tokenizer's"
        " own template is used",
        path,
        peer.doc.pos(path),
    )
    return "tokenizer"


def _task(peer: Peer, trainer: Block) -> None:
    rl = peer.take("rl", (str,))
    if rl is None:
        trainer.set("task", "sft", "Axolotl without rl: supervised fine-tuning")
        return
    if rl in RL_UNSUPPORTED:
        peer.unsupported(
            "rl", f"rl: {rl} has no counterpart in mccompile (dpo, ipo, kto and orpo are imported)"
        )
        return
    if rl not in RL:
        peer.invalid("rl", f"unknown rl '{rl}'")
        return
    task, loss = RL[rl]
    trainer.set("task", task, peer.src("rl"))
    if loss:
        trainer.set("loss_type", loss, peer.src("rl"))
    for key in ("rl_beta", "dpo_beta", "orpo_alpha"):
        beta = peer.take(key, (float,))
        if beta is not None:
            trainer.set("beta", beta, peer.src(key))
    smoothing = peer.take("dpo_label_smoothing", (float,))
    if smoothing is not None:
        trainer.set("label_smoothing", smoothing, peer.src("dpo_label_smoothing"))
    for key, ours in (
        ("kto_desirable_weight", "desirable_weight"),
        ("kto_undesirable_weight", "undesirable_weight"),
    ):
        value = peer.take(key, (float,))
        if value is not None:
            trainer.set(ours, value, peer.src(key))


def _training(peer: Peer, trainer: Block) -> None:
    seq = peer.take("sequence_len", (int,))
    trainer.set(
        "max_seq_length",
        seq if seq is not None else 512,
        peer.src("sequence_len") if seq is not None else "Axolotl's default sequence_len",
    )
    packing = peer.take("sample_packing", (bool,))
    if trainer.get("task") == "sft":
        trainer.set(
            "packing",
            bool(packing),
            peer.src("sample_packing") if packing is not None else "Axolotl's default",
        )
        on_inputs = peer.take("train_on_inputs", (bool,))
        trainer.set(
            "train_on_prompt",
            bool(on_inputs),
            peer.src("train_on_inputs")
            if on_inputs is not None
            else "Axolotl's default train_on_inputs: false",
        )
    elif packing:
        peer.drop("sample_packing", "preference pairs are not packed", trainer)
    if peer.data.get("eval_sample_packing") is not None and bool(
        peer.data["eval_sample_packing"]
    ) == bool(packing):
        peer.used.add("eval_sample_packing")
    val = peer.take("val_set_size", (float,))
    if val:
        trainer.set("validation_split", val, peer.src("val_set_size"))
    micro = peer.take("micro_batch_size", (int,))
    trainer.set(
        "per_device_train_batch_size",
        micro or 1,
        peer.src("micro_batch_size") if micro else "Axolotl's default micro_batch_size",
    )
    eval_bs = peer.take("eval_batch_size", (int,))
    if val or eval_bs:
        trainer.set(
            "per_device_eval_batch_size",
            eval_bs or micro or 1,
            peer.src("eval_batch_size")
            if eval_bs
            else "Axolotl: eval_batch_size defaults to micro_batch_size",
        )
    epochs = peer.take("num_epochs", (float,))
    if isinstance(epochs, float) and not epochs.is_integer():
        peer.approximate("num_epochs", f"{epochs} epochs rounded up to {int(epochs) + 1}")
        epochs = float(int(epochs) + 1)
    trainer.set(
        "num_epochs",
        int(epochs) if epochs else 1,
        peer.src("num_epochs") if epochs else "Axolotl's default num_epochs",
    )
    group = peer.take("group_by_length", (bool,))
    trainer.set(
        "group_by_length",
        bool(group),
        peer.src("group_by_length")
        if group is not None
        else "Axolotl's default: random batches, not grouped by length",
    )
    for key, (ours, kinds) in SIMPLE.items():
        if key in ("lora_r", "lora_alpha", "lora_dropout", "tf32", "ddp_timeout"):
            continue
        value = peer.take(key, kinds)
        if value is not None:
            trainer.set(ours, value, peer.src(key))
    if not peer.has("learning_rate") and "learning_rate" not in peer.invalid_keys():
        peer.invalid(("learning_rate",), "'learning_rate' is required")
    optimizer = peer.take("optimizer", (str,))
    if optimizer is None:
        trainer.set("optimizer", "adamw_torch_fused", "Axolotl's default optimizer")
    elif optimizer in OPTIMIZERS:
        trainer.set("optimizer", OPTIMIZERS[optimizer], peer.src("optimizer"))
    elif optimizer in PAGED:
        trainer.set("optimizer", PAGED[optimizer], peer.src("optimizer") + ", without paging")
        peer.approximate(
            "optimizer",
            f"'{optimizer}' is imported as '{PAGED[optimizer]}'"
            " (the same update; its state is not paged to CPU memory)",
        )
    else:
        peer.drop("optimizer", f"'{optimizer}' is not an optimizer mccompile knows", trainer)
    attention = None
    for key, impl in (
        ("flash_attention", "flash_attention_2"),
        ("sdp_attention", "sdpa"),
        ("eager_attention", "eager"),
        ("flex_attention", "flex_attention"),
    ):
        if peer.take(key, (bool,)):
            attention = (impl, key)
    if attention:
        trainer.set("attn_implementation", attention[0], peer.src(attention[1]))
    report = []
    if peer.has("wandb_project") or peer.take("use_wandb", (bool,)):
        report.append("wandb")
    if peer.has("mlflow_experiment_name"):
        report.append("mlflow")
        peer.used.add("mlflow_experiment_name")
    if peer.take("use_tensorboard", (bool,)):
        report.append("tensorboard")
    if report:
        trainer.set(
            "report_to",
            report[0] if len(report) == 1 else report,
            "Axolotl: wandb_project / use_tensorboard / mlflow_experiment_name",
        )
    if peer.has("wandb_name") and not peer.has("run_name"):
        trainer.set("run_name", peer.take("wandb_name", (str,)), peer.src("wandb_name"))
    # Axolotl's trainer builder (src/axolotl/core/builders/base.py) fills these in
    saves = peer.take("save_strategy", (str,))
    if saves is not None:
        trainer.set("save_strategy", saves, peer.src("save_strategy"))
    elif not peer.has("saves_per_epoch") and not peer.has("save_steps"):
        trainer.set("save_strategy", "epoch", "Axolotl's default: a checkpoint each epoch")
    if not peer.has("save_total_limit"):
        trainer.set("save_total_limit", 4, "Axolotl's default save_total_limit")
    evals = peer.take("eval_strategy", (str,))
    if evals is not None:
        trainer.set("eval_strategy", evals, peer.src("eval_strategy"))
    elif val and not peer.has("evals_per_epoch") and not peer.has("eval_steps"):
        trainer.set(
            "eval_strategy", "no", "Axolotl: no evaluation without eval_steps or evals_per_epoch"
        )
    if not peer.has("warmup_steps") and not peer.has("warmup_ratio"):
        trainer.set("warmup_ratio", 0.03, "Axolotl's default: 3% of the steps (at most 100)")
    if not peer.has("logging_steps"):
        trainer.set("logging_steps", 10, "Axolotl's default: 0.5% of the steps, between 1 and 10")
    if peer.has("hub_model_id") and not peer.has("push_to_hub"):
        trainer.set("push_to_hub", True, peer.src("hub_model_id") + ": Axolotl pushes then")
        trainer.set("hub_private_repo", True, "Axolotl creates the Hub repository private")


def _adapter(peer: Peer, trainer: Block) -> None:
    adapter = peer.take("adapter", (str,))
    four = peer.take("load_in_4bit", (bool,))
    eight = peer.take("load_in_8bit", (bool,))
    if adapter is not None and adapter not in ADAPTERS:
        peer.invalid("adapter", f"unknown adapter '{adapter}' (Axolotl takes lora or qlora)")
        return
    if adapter is None:
        for key in (
            "lora_r",
            "lora_alpha",
            "lora_dropout",
            "lora_target_modules",
            "lora_target_linear",
        ):
            if peer.has(key):
                peer.drop(key, "no adapter: full fine-tuning", trainer)
        return
    trainer.set("peft_adapter", "lora", peer.src("adapter"))
    if adapter == "qlora" or four:
        trainer.set(
            "quantization",
            "nf4",
            peer.src("load_in_4bit" if four else "adapter") + ": bitsandbytes nf4",
        )
        trainer.set("bnb_4bit_use_double_quant", True, "Axolotl's QLoRA: double quantization")
    elif eight:
        trainer.set("quantization", "int8", peer.src("load_in_8bit"))
    for key in ("lora_r", "lora_alpha"):
        value = peer.take(key, SIMPLE[key][1])
        if value is not None:
            trainer.set(key, value, peer.src(key))
    dropout = peer.take("lora_dropout", (float,))
    trainer.set(
        "lora_dropout",
        dropout if dropout is not None else 0.0,
        peer.src("lora_dropout") if dropout is not None else "Axolotl's default lora_dropout",
    )
    modules = peer.take("lora_target_modules", (list, str))
    linear = peer.take("lora_target_linear", (bool,))
    if linear:
        trainer.set("lora_target_modules", "all-linear", peer.src("lora_target_linear"))
        if modules:
            peer.drop("lora_target_modules", "lora_target_linear takes every linear layer", trainer)
    elif isinstance(modules, str) and not re.fullmatch(r"[\w.]+", modules):
        peer.unsupported(
            "lora_target_modules",
            f"lora_target_modules: {short(modules)} is one string, which PEFT reads as a regular"
            " expression over module names; mccompile's lora_target_modules takes a list of"
            " names or all-linear (list the module names)",
        )
    elif modules:
        # one module name (no pattern characters): the list that name means
        trainer.set(
            "lora_target_modules",
            [modules] if isinstance(modules, str) else modules,
            peer.src("lora_target_modules"),
        )
    else:
        peer.invalid(("adapter",), "LoRA needs lora_target_modules or lora_target_linear: true")


def _precision(peer: Peer, trainer: Block) -> None:
    bf16 = peer.take("bf16", (bool, str))
    fp16 = peer.take("fp16", (bool,))
    if bf16 == "full":
        peer.approximate(
            "bf16",
            "bf16: full is imported as bf16: true (mixed precision; the"
            " weights are not cast to bf16 for evaluation)",
        )
        bf16 = True
    elif isinstance(bf16, str) and bf16 != "auto":
        peer.invalid("bf16", f"bf16 must be true, false, auto or full, got {short(bf16)}")
        bf16 = None
    if fp16:
        trainer.set("fp16", True, peer.src("fp16"))
        trainer.set("bf16", False, "fp16 chosen")
    elif bf16 is not None:
        trainer.set("bf16", bf16, peer.src("bf16"))
    else:
        trainer.set("bf16", False, "Axolotl's default: no mixed precision")
    tf32 = peer.take("tf32", (bool,))
    if tf32 is not None:
        trainer.set("tf32", tf32, peer.src("tf32"))
    timeout = peer.take("ddp_timeout", (int,))
    if timeout is not None:
        trainer.set("ddp_timeout", timeout, peer.src("ddp_timeout"))


def _schedule(peer: Peer, trainer: Block) -> None:
    sched = peer.take("lr_scheduler", (str,))
    ratio = peer.take("cosine_min_lr_ratio", (float,))
    if sched is None:
        sched_src = "Axolotl's default lr_scheduler"
        sched = "cosine"
    else:
        sched_src = peer.src("lr_scheduler")
    if sched in ("one_cycle", "rex"):
        peer.drop("lr_scheduler", f"'{sched}' is not a schedule mccompile knows", trainer)
        return
    if sched not in SCHEDULERS:
        peer.invalid("lr_scheduler", f"unknown lr_scheduler '{sched}'")
        return
    if sched == "cosine" and ratio is not None:
        trainer.set(
            "lr_scheduler_type", "cosine_with_min_lr", sched_src + " with cosine_min_lr_ratio"
        )
        trainer.set("lr_scheduler_kwargs", {"min_lr_rate": ratio}, peer.src("cosine_min_lr_ratio"))
    else:
        trainer.set("lr_scheduler_type", sched, sched_src)
    kwargs = peer.take("lr_scheduler_kwargs", (dict,))
    if kwargs:
        trainer.set("lr_scheduler_kwargs", kwargs, peer.src("lr_scheduler_kwargs"))


def _distributed(peer: Peer, trainer: Block) -> None:
    ds = peer.take("deepspeed", (str,))
    fsdp = peer.take("fsdp", (list, str))
    fsdp_config = peer.take("fsdp_config", (dict,))
    version = peer.take("fsdp_version", (int,))
    if ds:
        found = read_deepspeed(peer, "deepspeed", ds)
        if found is None:
            peer.drop(
                "deepspeed",
                f"'{ds}' is neither beside the file nor a config the peers"
                " ship; set distributed.zero_stage yourself",
                trainer,
            )
            return
        stage, offload, how = found
        dist = trainer.nested("distributed")
        dist.comment = f"{peer.src('deepspeed')}: {how}"
        if stage == 0:
            dist.children = [_child("strategy", "ddp", "ZeRO stage 0 is plain data parallel")]
            return
        dist.children = [
            _child("strategy", "deepspeed", peer.src("deepspeed")),
            _child("zero_stage", stage, how),
            _child("offload", offload, how),
        ]
        return
    if fsdp or fsdp_config:
        dist = trainer.nested("distributed")
        dist.comment = peer.src("fsdp" if fsdp else "fsdp_config")
        children = [_child("strategy", "fsdp", peer.src("fsdp" if fsdp else "fsdp_config"))]
        cfg = fsdp_config or {}
        cpu = cfg.get("fsdp_offload_params", cfg.get("offload_params"))
        if cpu is not None:
            children.append(
                _child(
                    "offload",
                    bool(cpu),
                    peer.src("fsdp_config", "fsdp_offload_params")
                    if "fsdp_offload_params" in cfg
                    else peer.src("fsdp_config", "offload_params"),
                )
            )
        sdt = cfg.get("fsdp_state_dict_type", cfg.get("state_dict_type"))
        if sdt is not None:
            name = "fsdp_state_dict_type" if "fsdp_state_dict_type" in cfg else "state_dict_type"
            mapped = {"FULL_STATE_DICT": "full", "SHARDED_STATE_DICT": "sharded"}.get(str(sdt))
            if mapped:
                children.append(_child("state_dict_type", mapped, peer.src("fsdp_config", name)))
            else:
                peer.drop(("fsdp_config", name), f"'{sdt}' has no counterpart", trainer)
        dist.children = children
        for key, value in cfg.items():
            if (
                key
                in (
                    "fsdp_offload_params",
                    "offload_params",
                    "fsdp_state_dict_type",
                    "state_dict_type",
                )
                or value is None
            ):
                continue
            peer.drop(
                ("fsdp_config", key),
                "the accelerate FSDP settings are mccompile's own (transformer layers"
                " wrapped, states synced)",
                trainer,
            )
        if isinstance(fsdp, list):
            for j, option in enumerate(fsdp):
                if option not in ("full_shard", "auto_wrap"):
                    peer.drop(("fsdp", j), "only full_shard with auto_wrap is built", trainer)
        if version is not None:
            peer.drop("fsdp_version", "the FSDP version is accelerate's choice", trainer)


def _child(key: str, value: Any, comment: str) -> Entry:
    return Entry(key, value, comment)


def _tokens(peer: Peer, trainer: Block) -> None:
    special = peer.take("special_tokens", (dict,))
    if special:
        known = {
            k: v
            for k, v in special.items()
            if k in ("pad_token", "eos_token", "bos_token", "unk_token") and v is not None
        }
        if known:
            trainer.set("special_tokens", known, peer.src("special_tokens"))
        for key in special:
            if key not in known and special[key] is not None:
                peer.drop(("special_tokens", key), "not a token mccompile sets", trainer)
    tokens = peer.take("tokens", (list,))
    if tokens:
        trainer.set("added_tokens", tokens, peer.src("tokens"))
    chat = peer.take("chat_template", (str,))
    if chat is not None and not trainer.has("chat_template"):
        trainer.set(
            "chat_template", _chat_name(peer, ("chat_template",), chat), peer.src("chat_template")
        )
    elif chat is not None:
        peer.drop("chat_template", "the datasets' type sets the prompt format", trainer)


def _workflow(peer: Peer, out: Output, loaders: list[Block], evals: list[Block]) -> None:
    out.workflow = {"id": "train", "title": f"Imported from {peer.path.name}"}
    jobs: list[Block] = []
    inputs: list[Entry] = []
    for group, name, mix_id in ((loaders, "dataset", "mix"), (evals, "eval_dataset", "mix-eval")):
        ids = []
        for block in group:
            job = Block()
            job.set("id", f"load-{block.get('id')}")
            job.set("component", block.get("id"))
            jobs.append(job)
            ids.append(job.get("id"))
        if len(ids) > 1:
            if not any(c.get("id") == "ops" for c in out.components):
                ops = Block()
                ops.set("id", "ops")
                ops.set("type", "datasets")
                out.components.insert(len(loaders) + len(evals), ops)
            mix = Block()
            mix.set("id", mix_id)
            mix.set("component", "ops")
            mix.set("method", "concat", "Axolotl merges its datasets (and shuffles them)")
            mix.nested("input").children = [
                _child("datasets", [f"${{jobs.{i}.output}}" for i in ids], "")
            ]
            jobs.append(mix)
            ids = [mix_id]
        if ids:
            inputs.append(_child(name, f"${{jobs.{ids[0]}.output}}", ""))
    train = Block()
    train.set("id", "train")
    train.set("component", "trainer")
    if inputs:
        train.nested("input").children = inputs
    jobs.append(train)
    out.jobs = jobs
