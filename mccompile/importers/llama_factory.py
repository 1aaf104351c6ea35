"""LLaMA-Factory configs (llamafactory-cli train config.yaml) into mccompile configs.

LLaMA-Factory's defaults (src/llamafactory/hparams/*.py, over transformers'
Seq2SeqTrainingArguments) that differ from mccompile's are written out: cutoff_len 2048,
lora_dropout 0.0, lora_alpha = 2 x lora_rank, gradient checkpointing on (unless
disable_gradient_checkpointing), group_by_length off, logging_steps 500, no evaluation
unless eval_strategy, bf16 off unless asked, packing only for stage pt.
"""

from __future__ import annotations

import json
from typing import Any

from mccompile.frontend import schema
from mccompile.importers.common import Block, Entry, Output, Peer, read_deepspeed
from mccompile.importers.llama_factory_templates import ALPACA_INPUT, TEMPLATES

STAGES = {"sft": "sft", "pt": "sft", "dpo": "dpo", "kto": "kto", "rm": "reward"}
PREF_LOSS = {"sigmoid": None, "hinge": "hinge", "ipo": "ipo"}
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
OPTIMIZERS = (
    "adamw_torch",
    "adamw_torch_fused",
    "adamw_8bit",
    "adamw_bnb_8bit",
    "adafactor",
    "lomo",
    "galore_adamw",
    "galore_adamw_8bit",
    "grokadamw",
    "stableadamw",
    "schedule_free_radamw",
    "sgd",
    "adagrad",
    "rmsprop",
)
ATTENTION = {"fa2": "flash_attention_2", "sdpa": "sdpa", "disabled": "eager", "auto": None}

# LLaMA-Factory's data/dataset_info.json (hiyouga/LLaMA-Factory), the demo and common names
DATASET_INFO: dict[str, dict[str, Any]] = {
    "identity": {"file_name": "identity.json"},
    "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
    "alpaca_zh_demo": {"file_name": "alpaca_zh_demo.json"},
    "glaive_toolcall_en_demo": {
        "file_name": "glaive_toolcall_en_demo.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "tools": "tools"},
    },
    "glaive_toolcall_zh_demo": {
        "file_name": "glaive_toolcall_zh_demo.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "tools": "tools"},
    },
    "dpo_en_demo": {
        "file_name": "dpo_en_demo.json",
        "ranking": True,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
    },
    "dpo_zh_demo": {
        "file_name": "dpo_zh_demo.json",
        "ranking": True,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
    },
    "kto_en_demo": {
        "file_name": "kto_en_demo.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "kto_tag": "label"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    },
    "c4_demo": {"file_name": "c4_demo.jsonl", "columns": {"prompt": "text"}},
    "wiki_demo": {"file_name": "wiki_demo.txt", "columns": {"prompt": "text"}},
    "alpaca_en": {"hf_hub_url": "llamafactory/alpaca_en"},
    "alpaca_zh": {"hf_hub_url": "llamafactory/alpaca_zh"},
    "alpaca_gpt4_en": {"hf_hub_url": "llamafactory/alpaca_gpt4_en"},
    "alpaca_gpt4_zh": {"hf_hub_url": "llamafactory/alpaca_gpt4_zh"},
    "glaive_toolcall_en": {
        "hf_hub_url": "llamafactory/glaive_toolcall_en",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "tools": "tools"},
    },
    "lima": {"hf_hub_url": "llamafactory/lima", "formatting": "sharegpt"},
    "ultrachat_200k": {
        "hf_hub_url": "HuggingFaceH4/ultrachat_200k",
        "split": "train_sft",
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": {
            "role_tag": "role",
            "content_tag": "content",
            "user_tag": "user",
            "assistant_tag": "assistant",
        },
    },
    "ultrafeedback": {
        "hf_hub_url": "llamafactory/ultrafeedback_binarized",
        "ranking": True,
        "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"},
    },
    "dpo_mix_en": {
        "hf_hub_url": "llamafactory/DPO-En-Zh-20k",
        "subset": "en",
        "ranking": True,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
    },
}

SIMPLE: dict[str, tuple[str, tuple[type, ...]]] = {
    "trust_remote_code": ("trust_remote_code", (bool,)),
    "model_revision": ("model_revision", (str,)),
    "learning_rate": ("learning_rate", (float,)),
    "gradient_accumulation_steps": ("gradient_accumulation_steps", (int,)),
    "max_steps": ("max_steps", (int,)),
    "warmup_steps": ("warmup_steps", (int,)),
    "warmup_ratio": ("warmup_ratio", (float,)),
    "weight_decay": ("weight_decay", (float,)),
    "max_grad_norm": ("max_grad_norm", (float,)),
    "save_steps": ("save_steps", (int,)),
    "eval_steps": ("eval_steps", (int,)),
    "save_total_limit": ("save_total_limit", (int,)),
    "seed": ("seed", (int,)),
    "output_dir": ("output_dir", (str,)),
    "plot_loss": ("plot_loss", (bool,)),
    "neftune_noise_alpha": ("neftune_noise_alpha", (float,)),
    "push_to_hub": ("push_to_hub", (bool,)),
    "hub_model_id": ("hub_model_id", (str,)),
    "hub_private_repo": ("hub_private_repo", (bool,)),
    "run_name": ("run_name", (str,)),
    "preprocessing_num_workers": ("dataset_num_proc", (int,)),
    "dataloader_num_workers": ("dataloader_num_workers", (int,)),
    "enable_liger_kernel": ("use_liger_kernel", (bool,)),
    "use_dora": ("use_dora", (bool,)),
    "use_rslora": ("use_rslora", (bool,)),
    "tf32": ("tf32", (bool,)),
    "ddp_timeout": ("ddp_timeout", (int,)),
    "resume_from_checkpoint": ("resume_from_checkpoint", (str,)),
    "lr_scheduler_kwargs": ("lr_scheduler_kwargs", (dict,)),
    "per_device_eval_batch_size": ("per_device_eval_batch_size", (int,)),
}

REASONS = {
    "adapter_name_or_path": "training starts from the base model, not from an adapter",
    "pure_bf16": "bf16 is mixed precision (the weights stay in their loaded dtype)",
    "overwrite_cache": "the program prepares its data each run (prepare.py caches it)",
    "overwrite_output_dir": "a run resumes from output_dir's checkpoints only with --resume",
    "do_eval": "evaluation runs inside training (eval_strategy)",
    "do_predict": "no prediction run",
    "save_only_model": "checkpoints keep the optimizer state, so they resume",
    "mask_history": "the loss falls on every assistant turn",
    "tokenized_path": "the program tokenizes in prepare.py",
}


def import_config(peer: Peer) -> Output:
    out = Output()
    trainer = Block()
    out.header = [
        f"Imported from the LLaMA-Factory config {peer.path.name} by mccompile import.",
        "Each setting names the LLaMA-Factory key (and line) it came from; its defaults that",
        "differ from mccompile's are written out; keys without a counterpart are listed as",
        "'not imported'. Dataset names are resolved as in LLaMA-Factory's",
        "data/dataset_info.json; relative paths resolve where the program runs.",
    ]
    trainer.set("id", "trainer")
    trainer.set("type", "model-trainer")
    stage = _stage(peer, trainer)
    if peer.data.get("do_train") is True:
        peer.used.add("do_train")
        trainer.notes.append(f"do_train: true (line {peer.line('do_train')}): the workflow trains")
    loaders, fmt = _datasets(peer, stage)
    evals, _ = _datasets(peer, stage, "eval_dataset", "eval-")
    model = peer.take("model_name_or_path", (str,))
    if model is None and "model_name_or_path" not in peer.invalid_keys():
        peer.invalid(("model_name_or_path",), "'model_name_or_path' is required")
    trainer.set("model", model or "", peer.src("model_name_or_path"))
    trainer.set("dataset", "${input.dataset}")
    if evals:
        trainer.set("eval_dataset", "${input.eval_dataset}", peer.src("eval_dataset"))
    for key, value, comment in fmt:
        trainer.set(key, value, comment)
    _data(peer, trainer, stage)
    _method(peer, trainer)
    _training(peer, trainer)
    ops = _workflow(peer, out, loaders, evals)
    peer.keep_task_keys(trainer)
    unset = peer.rest(REASONS, trainer)
    trainer.notes += peer.not_imported
    if unset:
        trainer.notes.append("unset in the LLaMA-Factory file (null): " + ", ".join(unset))
    out.components += [*loaders, *evals, *ops, trainer]
    return out


def _stage(peer: Peer, trainer: Block) -> str:
    stage = peer.take("stage", (str,)) or "sft"
    if stage == "ppo":
        peer.unsupported(
            "stage",
            "stage: ppo has no counterpart in mccompile (sft, pt, dpo, kto and rm are imported)",
        )
        return "sft"
    if stage not in STAGES:
        peer.invalid("stage", f"unknown stage '{stage}'")
        return "sft"
    task = STAGES[stage]
    loss = peer.take("pref_loss", (str,))
    if stage == "dpo" and loss == "orpo":
        task = "orpo"
    src = peer.src("stage") if peer.has("stage") else "LLaMA-Factory's default stage: sft"
    trainer.set(
        "task", task, src + (": pretraining is SFT on whole texts" if stage == "pt" else "")
    )
    if stage == "dpo" and loss is not None:
        if loss == "simpo":
            peer.unsupported("pref_loss", "pref_loss: simpo has no counterpart in mccompile")
        elif loss in PREF_LOSS:
            if PREF_LOSS[loss]:
                trainer.set("loss_type", PREF_LOSS[loss], peer.src("pref_loss"))
        elif loss != "orpo":
            peer.invalid("pref_loss", f"unknown pref_loss '{loss}'")
    if task in ("dpo", "kto", "orpo"):
        beta = peer.take("pref_beta", (float,))
        trainer.set(
            "beta",
            beta if beta is not None else 0.1,
            peer.src("pref_beta") if beta is not None else "LLaMA-Factory's pref_beta",
        )
        smoothing = peer.take("dpo_label_smoothing", (float,))
        if smoothing:
            trainer.set("label_smoothing", smoothing, peer.src("dpo_label_smoothing"))
        ref = peer.take("ref_model", (str,))
        if ref:
            trainer.set("reference_model", ref, peer.src("ref_model"))
        ftx = peer.take("pref_ftx", (float,))
        if ftx:
            peer.drop("pref_ftx", "no SFT loss mixed into preference training", trainer)
    for key, ours in (
        ("kto_chosen_weight", "desirable_weight"),
        ("kto_rejected_weight", "undesirable_weight"),
    ):
        value = peer.take(key, (float,))
        if value is not None and task == "kto":
            trainer.set(ours, value, peer.src(key))
    return stage


def _info(peer: Peer) -> dict[str, Any]:
    """dataset_info.json from dataset_dir beside the config, else the names LLaMA-Factory ships."""
    folder = peer.take("dataset_dir", (str,)) or "data"
    for base in (peer.path.parent,):
        path = base / folder / "dataset_info.json"
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(loaded, dict):
            return {**DATASET_INFO, **loaded}
    return DATASET_INFO


def _datasets(
    peer: Peer, stage: str, key: str = "dataset", prefix: str = ""
) -> tuple[list[Block], list[tuple[str, Any, str]]]:
    raw = peer.take(key, (str, list))
    if raw is None:
        if key == "dataset" and key not in peer.invalid_keys():
            peer.invalid((key,), "'dataset' is required (names from dataset_info.json)")
        return [], []
    names = [n.strip() for n in raw.split(",")] if isinstance(raw, str) else [str(n) for n in raw]
    folder = peer.data.get("dataset_dir") or "data"
    info = _info(peer)
    max_samples = peer.take("max_samples", (int,))
    blocks: list[Block] = []
    formats: list[list[tuple[str, Any, str]]] = []
    src = peer.src(key)
    for i, name in enumerate(names):
        entry = info.get(name)
        if entry is None:
            peer.diags.error(
                "import-unknown-dataset",
                f"dataset '{name}' is not in dataset_info.json (put the file's dataset_info.json"
                f" in {folder}/ beside the config)",
                (key,),
                peer.doc.pos((key,)),
            )
            continue
        block = Block()
        ident = name.replace(".", "-") if name[:1].isalpha() else f"data-{i + 1}"
        block.set("id", prefix + ident)
        block.set("type", "datasets")
        dsrc = f"{src}: '{name}' in dataset_info.json"
        if "file_name" in entry:
            file = (
                f"{folder.rstrip('/')}/{entry['file_name']}"
                if folder.startswith("/")
                else f"./{folder}/{entry['file_name']}"
            )
            loader = "text" if file.endswith(".txt") else "json"
            block.set("provider", "local", dsrc)
            block.set("loader", loader, "by the file's extension")
            block.set("data_files", file, f"{folder}/ is LLaMA-Factory's dataset_dir")
        elif "hf_hub_url" in entry:
            block.set("provider", "huggingface", dsrc)
            block.set("path", entry["hf_hub_url"], dsrc)
            if entry.get("subset"):
                block.set("name", entry["subset"], "dataset_info.json: subset")
        else:
            peer.unsupported(key, f"dataset '{name}' is not a file or a Hub dataset")
            continue
        split = entry.get("split", "train")
        if max_samples:
            split = f"{split}[:{max_samples}]"
        block.set(
            "split",
            split,
            peer.src("max_samples") if max_samples else "LLaMA-Factory's default split",
        )
        blocks.append(block)
        formats.append(_format(entry, stage, name))
        alpaca = entry.get("formatting", "alpaca") == "alpaca" and not entry.get("ranking")
        if alpaca and stage == "sft" and key == "dataset" and len(formats) == 1:
            peer.differs(key, *ALPACA_INPUT)
    first = formats[0] if formats else []
    for i, fmt in enumerate(formats[1:], start=1):
        if [f[:2] for f in fmt] != [f[:2] for f in first]:
            peer.diags.warning(
                "import-approximate",
                f"LLaMA-Factory key '{key}': '{names[i]}' has another format than '{names[0]}';"
                " one trainer takes"
                " one format, the first dataset's is used",
                (key,),
                peer.doc.pos((key,)),
            )
    return blocks, first


def _format(entry: dict[str, Any], stage: str, name: str) -> list[tuple[str, Any, str]]:
    cols = entry.get("columns") or {}
    src = f"dataset_info.json '{name}'"
    if stage == "pt":
        # pretraining takes the prompt column's text (Alpaca: the instruction)
        return [("text_column", cols.get("prompt", "instruction"), f"{src}: the text column")]
    if entry.get("formatting") == "sharegpt":
        tags = entry.get("tags") or {}
        messages = cols.get("messages", "conversations")
        if entry.get("ranking") or stage == "kto":
            return []  # ShareGPT pairs / kto messages + label: detected from the columns
        out: list[tuple[str, Any, str]] = [("messages_column", messages, f"{src}: messages")]
        role, content = tags.get("role_tag", "from"), tags.get("content_tag", "value")
        if (role, content) != ("role", "content"):
            out.append(
                ("message_fields", {"role": role, "content": content}, f"{src}: ShareGPT tags")
            )
        roles = {
            "user": [tags.get("user_tag", "human")],
            "assistant": [tags.get("assistant_tag", "gpt")],
            "system": [tags.get("system_tag", "system")],
        }
        if (role, content) != ("role", "content") or any(
            roles[k] != [k] for k in ("user", "assistant")
        ):
            out.append(
                (
                    "roles",
                    {
                        **roles,
                        "tool": [tags.get("observation_tag", "observation")],
                        "function_call": [tags.get("function_tag", "function_call")],
                    },
                    f"{src}: ShareGPT tags (LLaMA-Factory's defaults)",
                )
            )
        if "tools" in cols:
            out.append(("tools_column", cols["tools"], f"{src}: tools"))
        return out
    if entry.get("ranking"):
        out = []
        for ours, theirs in (
            ("prompt_column", "prompt"),
            ("chosen_column", "chosen"),
            ("rejected_column", "rejected"),
        ):
            if theirs in cols:
                out.append((ours, cols[theirs], f"{src}: {theirs}"))
        return out
    default = {"prompt": "instruction", "query": "input", "response": "output"}
    if all(cols.get(k, v) == v for k, v in default.items()) and "system" not in cols:
        return []  # Alpaca's instruction / input / output: detected from the columns
    out = [
        ("prompt_column", cols.get("prompt", "instruction"), f"{src}: prompt"),
        ("response_column", cols.get("response", "output"), f"{src}: response"),
    ]
    if "system" in cols:
        out.append(("system_column", cols["system"], f"{src}: system"))
    return out


def _data(peer: Peer, trainer: Block, stage: str) -> None:
    template = peer.take("template", (str,))
    if template is not None and stage != "pt":
        if template in TEMPLATES:
            mapped = TEMPLATES[template]
            if template == "qwen" and trainer.has("tools_column"):
                peer.unsupported(
                    "template",
                    "template: qwen with tool-call data (a tools column) has no counterpart:"
                    " mccompile's qwen format renders no tool definitions or calls"
                    " (template qwen3 does)",
                )
            trainer.set("chat_template", mapped.chat_template, peer.src("template"))
            task = str(trainer.get("task"))
            if mapped.eos_token and "special_tokens" in schema.trainer_fields(task):
                trainer.set(
                    "special_tokens",
                    {"eos_token": mapped.eos_token},
                    peer.src("template") + ": its end-of-turn token is the EOS",
                )
            elif mapped.eos_token:
                peer.differs(
                    "template",
                    "eos-after-end-of-turn",
                    f"template {template}: task: {task} keeps the tokenizer's end-of-sequence"
                    f" token, which TRL appends after each completion's {mapped.eos_token}"
                    f" (LLaMA-Factory makes {mapped.eos_token} the end-of-sequence token)",
                )
            for name, why in mapped.differences:
                peer.differs("template", name, f"template {template}: {why}")
        else:
            peer.approximate(
                "template",
                f"template '{template}' is not one of mccompile's"
                " built-ins; the tokenizer's own chat template is used",
            )
            trainer.set("chat_template", "tokenizer", peer.src("template") + ": approximated")
    elif template is not None:
        peer.drop("template", "pretraining trains whole texts, without a template", trainer)
    for key in ("add_special_tokens", "new_special_tokens"):
        tokens = peer.take(key, (str, list))
        if tokens:
            names = [t.strip() for t in tokens.split(",")] if isinstance(tokens, str) else tokens
            trainer.set("added_tokens", names, peer.src(key))
    cutoff = peer.take("cutoff_len", (int,))
    trainer.set(
        "max_seq_length",
        cutoff or 2048,
        peer.src("cutoff_len") if cutoff else "LLaMA-Factory's default cutoff_len",
    )
    peer.differs(
        "cutoff_len" if peer.has("cutoff_len") else "stage",
        "truncation",
        f"a row longer than {cutoff or 2048} tokens loses its end (a row left with no"
        " response is dropped); LLaMA-Factory cuts the prompt and the response in"
        " proportion and keeps every row",
    )
    task = trainer.get("task")
    packing = peer.take("packing", (bool,))
    neat = peer.take("neat_packing", (bool,))
    if neat:
        packing = True
        peer.approximate(
            "neat_packing",
            "imported as packing: position ids mark each example, which keeps them apart with"
            " a varlen attention kernel (flash_attention_2) only",
        )
    if task == "sft":
        trainer.set(
            "packing",
            packing if packing is not None else stage == "pt",
            peer.src("neat_packing") + ": packed, position ids per example"
            if neat
            else peer.src("packing")
            if packing is not None
            else "LLaMA-Factory packs by default only for stage pt",
        )
        on_prompt = peer.take("train_on_prompt", (bool,))
        if on_prompt and peer.data.get("mask_history") is True:
            peer.invalid("mask_history", "'mask_history' is incompatible with 'train_on_prompt'")
        if stage != "pt":
            trainer.set(
                "train_on_prompt",
                bool(on_prompt),
                peer.src("train_on_prompt")
                if on_prompt is not None
                else "LLaMA-Factory's default train_on_prompt",
            )
    elif packing:
        peer.drop("packing", "preference pairs are not packed", trainer)
    val = peer.take("val_size", (int, float))
    if val and peer.has("eval_dataset"):
        peer.invalid("val_size", "cannot specify 'val_size' with 'eval_dataset'")
    if val:
        trainer.set("validation_split", val, peer.src("val_size"))


def _method(peer: Peer, trainer: Block) -> None:
    ftype = peer.take("finetuning_type", (str,)) or "lora"
    src = (
        peer.src("finetuning_type")
        if peer.has("finetuning_type")
        else "LLaMA-Factory's default finetuning_type: lora"
    )
    if ftype in ("freeze", "oft"):
        peer.unsupported(
            "finetuning_type",
            f"finetuning_type: {ftype} has no counterpart (lora and full are imported)",
        )
        return
    if ftype not in ("lora", "full"):
        peer.invalid("finetuning_type", f"unknown finetuning_type '{ftype}'")
        return
    bits = peer.take("quantization_bit", (int,))
    method = peer.take("quantization_method", (str,))
    if method not in (None, "bitsandbytes", "bnb"):
        peer.unsupported(
            "quantization_method",
            f"quantization_method: {method} has no counterpart (bitsandbytes is imported)",
        )
    if ftype == "full":
        trainer.set("peft_adapter", None, src + ": full fine-tuning")
        for key in ("lora_rank", "lora_alpha", "lora_dropout", "lora_target"):
            if peer.has(key):
                peer.drop(key, "finetuning_type full trains every weight", trainer)
        if bits:
            peer.drop("quantization_bit", "a quantized model is not fully fine-tuned", trainer)
        return
    trainer.set("peft_adapter", "lora", src)
    if bits is not None:
        qtype = peer.take("quantization_type", (str,)) or "nf4"
        if bits == 4:
            trainer.set(
                "quantization", "nf4" if qtype == "nf4" else "int4", peer.src("quantization_bit")
            )
            double = peer.take("double_quantization", (bool,))
            trainer.set(
                "bnb_4bit_use_double_quant",
                True if double is None else double,
                peer.src("double_quantization")
                if double is not None
                else "LLaMA-Factory's default double_quantization",
            )
        elif bits == 8:
            trainer.set("quantization", "int8", peer.src("quantization_bit"))
        else:
            peer.unsupported(
                "quantization_bit",
                f"{bits}-bit quantization has no counterpart"
                " (4 and 8 with bitsandbytes are imported)",
            )
    rank = peer.take("lora_rank", (int,))
    trainer.set(
        "lora_r", rank or 8, peer.src("lora_rank") if rank else "LLaMA-Factory's default lora_rank"
    )
    alpha = peer.take("lora_alpha", (int, float))
    trainer.set(
        "lora_alpha",
        alpha if alpha is not None else (rank or 8) * 2,
        peer.src("lora_alpha")
        if alpha is not None
        else "LLaMA-Factory's default lora_alpha: 2 x lora_rank",
    )
    dropout = peer.take("lora_dropout", (float,))
    trainer.set(
        "lora_dropout",
        dropout if dropout is not None else 0.0,
        peer.src("lora_dropout") if dropout is not None else "LLaMA-Factory's default lora_dropout",
    )
    target = peer.take("lora_target", (str, list)) or "all"
    tsrc = peer.src("lora_target") if peer.has("lora_target") else "LLaMA-Factory's default"
    if target == "all":
        trainer.set("lora_target_modules", "all-linear", tsrc)
    else:
        names = [t.strip() for t in target.split(",")] if isinstance(target, str) else target
        trainer.set("lora_target_modules", names, tsrc)
    extra = peer.take("additional_target", (str, list))
    if extra:
        names = [t.strip() for t in extra.split(",")] if isinstance(extra, str) else extra
        trainer.set("lora_modules_to_save", names, peer.src("additional_target"))


def _training(peer: Peer, trainer: Block) -> None:
    bs = peer.take("per_device_train_batch_size", (int,))
    trainer.set(
        "per_device_train_batch_size",
        bs or 8,
        peer.src("per_device_train_batch_size") if bs else "transformers' default",
    )
    epochs = peer.take("num_train_epochs", (float,))
    if epochs is not None and not float(epochs).is_integer():
        peer.approximate("num_train_epochs", f"{epochs} epochs rounded up")
        epochs = float(int(epochs) + 1)
    trainer.set(
        "num_epochs",
        int(epochs) if epochs is not None else 3,
        peer.src("num_train_epochs") if epochs is not None else "transformers' default",
    )
    for key, (ours, kinds) in SIMPLE.items():
        value = peer.take(key, kinds)
        if key == "per_device_eval_batch_size" and not trainer.has("validation_split"):
            if value is not None:
                peer.drop(key, "no evaluation data (val_size)", trainer)
            continue
        if value is not None:
            trainer.set(ours, value, peer.src(key))
    if trainer.has("validation_split") and not trainer.has("per_device_eval_batch_size"):
        trainer.set("per_device_eval_batch_size", 8, "transformers' default")
    logging = peer.take("logging_steps", (int,))
    trainer.set(
        "logging_steps",
        logging or 500,
        peer.src("logging_steps") if logging else "transformers' default logging_steps",
    )
    sched = peer.take("lr_scheduler_type", (str,))
    if sched is not None and sched not in SCHEDULERS:
        peer.invalid("lr_scheduler_type", f"unknown lr_scheduler_type '{sched}'")
    trainer.set(
        "lr_scheduler_type",
        sched or "linear",
        peer.src("lr_scheduler_type") if sched else "transformers' default",
    )
    optim = peer.take("optim", (str,))
    if optim is None:
        trainer.set("optimizer", "adamw_torch", "transformers' default optim")
    elif optim in OPTIMIZERS:
        trainer.set("optimizer", optim, peer.src("optim"))
    else:
        peer.drop("optim", f"'{optim}' is not an optimizer mccompile knows", trainer)
    bf16 = peer.take("bf16", (bool,))
    fp16 = peer.take("fp16", (bool,))
    trainer.set(
        "bf16",
        bool(bf16),
        peer.src("bf16") if bf16 is not None else "transformers' default: no mixed precision",
    )
    if fp16:
        trainer.set("fp16", True, peer.src("fp16"))
    disable = peer.take("disable_gradient_checkpointing", (bool,))
    trainer.set(
        "gradient_checkpointing",
        not disable,
        peer.src("disable_gradient_checkpointing")
        if disable is not None
        else "LLaMA-Factory turns gradient checkpointing on by default",
    )
    group = peer.take("group_by_length", (bool,))
    trainer.set(
        "group_by_length",
        bool(group),
        peer.src("group_by_length")
        if group is not None
        else "transformers' default: random batches",
    )
    evals = peer.take("eval_strategy", (str,))
    if evals is not None and evals not in ("steps", "epoch", "no"):
        peer.invalid("eval_strategy", f"unknown eval_strategy '{evals}'")
    trainer.set(
        "eval_strategy",
        evals or "no",
        peer.src("eval_strategy") if evals else "transformers' default: no evaluation",
    )
    saves = peer.take("save_strategy", (str,))
    if saves is not None:
        trainer.set("save_strategy", saves, peer.src("save_strategy"))
    attn = peer.take("flash_attn", (str,))
    if attn is not None:
        if attn not in ATTENTION:
            peer.invalid("flash_attn", f"unknown flash_attn '{attn}'")
        elif ATTENTION[attn]:
            trainer.set("attn_implementation", ATTENTION[attn], peer.src("flash_attn"))
    report = peer.take("report_to", (str, list))
    trainer.set(
        "report_to",
        report if report is not None else "none",
        peer.src("report_to") if report is not None else "LLaMA-Factory's default",
    )
    ds = peer.take("deepspeed", (str,))
    if ds:
        found = read_deepspeed(peer, "deepspeed", ds)
        if found is None:
            peer.drop(
                "deepspeed",
                f"'{ds}' is neither beside the file nor a config the peers"
                " ship; set distributed.zero_stage yourself",
                trainer,
            )
        else:
            stage, offload, how = found
            dist = trainer.nested("distributed")
            dist.comment = f"{peer.src('deepspeed')}: {how}"
            dist.children = (
                [Entry("strategy", "ddp", "ZeRO stage 0 is plain data parallel")]
                if stage == 0
                else [
                    Entry("strategy", "deepspeed", peer.src("deepspeed")),
                    Entry("zero_stage", stage, how),
                    Entry("offload", offload, how),
                ]
            )


def _probabilities(peer: Peer, count: int) -> list[float] | None:
    probs = peer.take("interleave_probs", (str, list))
    if probs is None:
        return None
    parts = probs.split(",") if isinstance(probs, str) else probs
    try:
        values = [float(p) for p in parts]
    except (TypeError, ValueError):
        peer.invalid("interleave_probs", "'interleave_probs' must be numbers separated by commas")
        return None
    if count and len(values) != count:
        peer.invalid(
            "interleave_probs",
            f"{len(values)} interleave_probs for {count} datasets: the lengths must be identical",
        )
        return None
    return values


def _workflow(peer: Peer, out: Output, loaders: list[Block], evals: list[Block]) -> list[Block]:
    out.workflow = {"id": "train", "title": f"Imported from {peer.path.name}"}
    strategy = peer.take("mix_strategy", (str,)) or "concat"
    if strategy not in ("concat", "interleave_under", "interleave_over"):
        peer.invalid("mix_strategy", f"unknown mix_strategy '{strategy}'")
        strategy = "concat"
    if strategy == "concat" and peer.has("interleave_probs"):
        peer.invalid("interleave_probs", "'interleave_probs' is only valid for interleaved mixing")
    probs = _probabilities(peer, len(loaders)) if strategy != "concat" else None
    jobs: list[Block] = []
    ops: list[Block] = []
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
            if not ops:
                block = Block()
                block.set("id", "ops")
                block.set("type", "datasets")
                ops.append(block)
            mix = Block()
            mix.set("id", mix_id)
            mix.set("component", "ops")
            mixed = [Entry("datasets", [f"${{jobs.{i}.output}}" for i in ids], "")]
            if strategy == "concat":
                mix.set(
                    "method",
                    "concat",
                    peer.src("mix_strategy")
                    if peer.has("mix_strategy")
                    else "LLaMA-Factory's default mix_strategy: concat",
                )
            else:
                mix.set("method", "interleave", peer.src("mix_strategy"))
                if probs is not None and len(probs) == len(ids):
                    mixed.append(Entry("probabilities", probs, peer.src("interleave_probs")))
                mixed.append(
                    Entry(
                        "stopping_strategy",
                        "first_exhausted" if strategy == "interleave_under" else "all_exhausted",
                        peer.src("mix_strategy"),
                    )
                )
            mix.nested("input").children = mixed
            jobs.append(mix)
            ids = [mix_id]
        if ids:
            inputs.append(Entry(name, f"${{jobs.{ids[0]}.output}}", ""))
    train = Block()
    train.set("id", "train")
    train.set("component", "trainer")
    if inputs:
        train.nested("input").children = inputs
    jobs.append(train)
    out.jobs = jobs
    return ops
