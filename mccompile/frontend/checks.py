"""Semantic checks the schema cannot express, on resolved jobs.

Each check reports at the place the user wrote the value: the job's input
when a job set it, the component otherwise.
"""

from __future__ import annotations

from typing import Any

from mccompile import ir, tasks
from mccompile.diagnostics import Path_, suggest
from mccompile.frontend import chat, launchers
from mccompile.frontend.chat import jinja_problem
from mccompile.frontend.dataset_checks import DatasetChecks
from mccompile.frontend.local_files import looks_local
from mccompile.tasks.base import Where
from mccompile.tasks.fields import LORA_FIELDS


class Checker(DatasetChecks):
    """Every semantic check: the trainer's here, the datasets' in :class:`DatasetChecks`."""

    # -- trainer -----------------------------------------------------------------

    def trainer(self, job: ir.Job, where: Where) -> None:
        f = job.fields
        given = job.explicit

        def val(key: str) -> Any:
            return ir.lit(f[key]) if key in f else None

        def is_set(key: str) -> bool:
            return key in given and not (
                isinstance(f.get(key), ir.Lit) and val(key) in (None, False)
            )

        tasks.of_job(job).check(self, job, where)
        for key in ("dataset", "eval_dataset"):
            if isinstance(val(key), str) and looks_local(val(key)):
                self._missing(key, val(key), where(key))
        if val("fp16") is True and val("bf16") is True:
            self._error("precision", "fp16 and bf16 are both true; choose one", where("bf16"))
        lora = val("peft_adapter") == "lora" or not isinstance(f.get("peft_adapter"), ir.Lit)
        # a peft_adapter already reported as wrong says nothing about its LoRA settings
        if not lora and not self.diags.has_error_at(where("peft_adapter")):
            for key in LORA_FIELDS:
                if key in given:
                    self._error(
                        "needs-lora",
                        f"'{self._name(key, where(key))}' is set but peft_adapter is not lora"
                        " (it would be ignored); add peft_adapter: lora",
                        where(key),
                    )
            if is_set("quantization"):
                self._error(
                    "needs-lora",
                    "quantization needs peft_adapter: lora (a quantized model cannot be fully"
                    " fine-tuned)",
                    where("quantization"),
                )
        quant = val("quantization")
        if quant not in ("nf4", "int4") and isinstance(f.get("quantization"), ir.Lit):
            for key in ("bnb_4bit_compute_dtype", "bnb_4bit_use_double_quant"):
                if key in given:
                    self._error(
                        "needs-4bit",
                        f"'{key}' applies only to 4-bit quantization (nf4 or int4)",
                        where(key),
                    )
        if "warmup_steps" in given and "warmup_ratio" in given:
            self._error(
                "warmup", "give warmup_steps or warmup_ratio, not both", where("warmup_ratio")
            )
        has_eval = is_set("eval_dataset") or is_set("validation_split")
        if is_set("eval_dataset") and is_set("validation_split"):
            self._error(
                "eval-conflict",
                "give eval_dataset or validation_split, not both",
                where("validation_split"),
            )
        split = val("validation_split")
        if isinstance(split, float) and split >= 1 and not split.is_integer():
            self._error(
                "range",
                "validation_split is a share below 1 or a whole number of rows",
                where("validation_split"),
            )
        if "eval_steps" in given and not has_eval:
            self._warning(
                "no-effect",
                "eval_steps is set but there is no eval_dataset or validation_split: nothing"
                " will be evaluated",
                where("eval_steps"),
            )
        if "per_device_eval_batch_size" in given and not has_eval:
            self._warning(
                "no-effect",
                "per_device_eval_batch_size is set but there is no eval data",
                where("per_device_eval_batch_size"),
            )
        kwargs = val("lr_scheduler_kwargs")
        if (
            val("lr_scheduler_type") == "warmup_stable_decay"
            and isinstance(kwargs, dict)
            and "num_decay_steps" not in kwargs
        ):
            self._error(
                "scheduler",
                "warmup_stable_decay needs lr_scheduler_kwargs: {num_decay_steps: N}"
                " (the steps of its final decay)",
                where("lr_scheduler_type"),
            )
        if val("lr_scheduler_type") == "reduce_lr_on_plateau" and not has_eval:
            self._error(
                "needs-eval",
                "reduce_lr_on_plateau lowers the rate when eval loss stops improving: it needs"
                " eval_dataset or validation_split",
                where("lr_scheduler_type"),
            )
        if "max_steps" in given and "num_epochs" in given and val("max_steps") is not None:
            self._warning(
                "no-effect",
                "max_steps and num_epochs are both set; max_steps decides when training stops",
                where("num_epochs"),
            )
        if val("optimizer") in ("galore_adamw", "galore_adamw_8bit", "lomo") and lora:
            self._warning(
                "optimizer",
                f"{val('optimizer')} is meant for full fine-tuning; with LoRA it trains only the"
                " adapter",
                where("optimizer"),
            )
        self._schedules(job, where, has_eval)
        self._hub(job, where)
        self._distributed(job, where)
        if "chat_template" in tasks.of_job(job).FIELDS:  # the tasks that train on conversations
            self._chat(job, where)

    def _chat(self, job: ir.Job, where: Where) -> None:
        """chat_template, roles and tokens: names, files and Jinja checked here."""
        f = job.fields
        value = ir.lit(f.get("chat_template", ir.Lit("tokenizer")))
        kind = chat.template_kind(value) if isinstance(value, str) else "tokenizer"
        names = [*chat.SPECIAL_NAMES, *chat.BUILTIN_TEMPLATES]
        path = where("chat_template")
        text = None
        if kind == "unknown":
            self._error(
                "chat-template",
                f"unknown chat_template '{value}'{suggest(value, names)}: expected one of"
                f" {', '.join(names)}, a .jinja file or inline Jinja text",
                path,
            )
        elif kind == "file":
            file = self.base / value
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                self._error(
                    "chat-template", f"cannot read the chat template {value}: {reason}", path
                )
            else:
                self.files[value] = text
        elif kind == "inline":
            text = value
        if text is not None:
            problem = jinja_problem(text)
            if problem is not None:
                message, line = problem
                self._error(
                    "chat-template",
                    f"the chat template does not parse as Jinja (its line {line}): {message}",
                    path,
                )
        columns = [k for k in ("text_column", "prompt_column") if k in job.explicit]
        for key in ("message_fields", "roles", "tools_column", "final_turn_column"):
            if key in job.explicit and columns:
                self._warning(
                    "no-effect",
                    f"{key} is for chat and ShareGPT data; it has no effect with {columns[0]}",
                    where(key),
                )
        if "chat_template" in job.explicit and "text_column" in job.explicit:
            self._warning(
                "no-effect",
                "chat_template has no effect with text_column (the texts are trained as they are)",
                path,
            )
        grows = [
            k for k in ("added_tokens", "special_tokens") if ir.lit(f.get(k, ir.Lit(None)))
        ]
        if grows and ir.lit(f.get("merge_adapter", ir.Lit(False))) is True:
            self._error(
                "merge-tokens",
                f"merge_adapter with {grows[0]} is not supported: the merge would need the base"
                " model with its grown embeddings; merge after training (resize the base, then"
                " PeftModel.from_pretrained and merge_and_unload)",
                where("merge_adapter"),
            )
        roles = ir.lit(f.get("roles", ir.Lit(None))) or {}
        seen: dict[str, str] = {}
        for role, spellings in roles.items() if isinstance(roles, dict) else []:
            if role not in chat.ROLES:
                self._error(
                    "roles",
                    f"roles maps to an unknown role '{role}'{suggest(role, chat.ROLES)}: the roles"
                    f" are {', '.join(chat.ROLES)}",
                    (*where("roles"), role),
                )
                continue
            for spelling in spellings if isinstance(spellings, list) else []:
                if spelling in seen and seen[spelling] != role:
                    self._error(
                        "roles",
                        f"'{spelling}' is spelled for both {seen[spelling]} and {role}",
                        (*where("roles"), role),
                    )
                seen[spelling] = role

    def _schedules(self, job: ir.Job, where: Where, has_eval: bool) -> None:
        """eval/save strategies against the step counts and per-epoch counts given with them."""
        f, given = job.fields, job.explicit
        for kind, noun in (("eval", "evaluations"), ("save", "checkpoints")):
            strategy = ir.lit(f.get(f"{kind}_strategy", ir.Lit(None)))
            steps, per_epoch = f"{kind}_steps", f"{kind}s_per_epoch"
            counted = per_epoch in given and ir.lit(f[per_epoch]) is not None
            if counted and steps in given:
                self._error(
                    "per-epoch",
                    f"give {per_epoch} or {steps}, not both ({per_epoch} computes {steps} from"
                    " the data's length)",
                    where(per_epoch),
                )
            if counted and strategy in ("epoch", "no"):
                self._error(
                    "per-epoch",
                    f"{per_epoch} needs {kind}_strategy: steps ({kind}_strategy is {strategy})",
                    where(per_epoch),
                )
            elif steps in given and strategy in ("epoch", "no"):
                self._warning(
                    "no-effect",
                    f"{steps} has no effect with {kind}_strategy: {strategy}",
                    where(steps),
                )
            if kind == "eval" and not has_eval:
                for key in (f"{kind}_strategy", per_epoch):
                    if key in given and ir.lit(f[key]) not in (None, "no"):
                        self._warning(
                            "no-effect",
                            f"{key} is set but there is no eval_dataset or validation_split:"
                            f" no {noun} will happen",
                            where(key),
                        )

    def _hub(self, job: ir.Job, where: Where) -> None:
        f, given = job.fields, job.explicit
        push = f.get("push_to_hub", ir.Lit(False))
        model_id = f.get("hub_model_id", ir.Lit(None))
        if ir.lit(push) is True and isinstance(model_id, ir.Lit) and model_id.value is None:
            self._error(
                "hub",
                "push_to_hub needs hub_model_id (the repository to push to, e.g. my-org/my-model)",
                where("push_to_hub"),
            )
        if isinstance(push, ir.Lit) and push.value is not True:
            for key in ("hub_model_id", "hub_private_repo"):
                if key in given:
                    self._warning(
                        "no-effect",
                        f"{key} is set but push_to_hub is not true: nothing is pushed",
                        where(key),
                    )

    def _distributed(self, job: ir.Job, where: Where) -> None:
        dist = ir.lit(job.fields["distributed"]) or {}
        strategy = dist.get("strategy", "auto")
        path = where("distributed")
        given = self._raw_keys(path)
        if "zero_stage" in given and strategy != "deepspeed":
            self._error(
                "distributed",
                f"zero_stage is a DeepSpeed setting; strategy is {strategy}",
                path + ("zero_stage",),
            )
        if "state_dict_type" in given and strategy != "fsdp":
            self._error(
                "distributed",
                f"state_dict_type is a FSDP setting; strategy is {strategy}",
                path + ("state_dict_type",),
            )
        if dist.get("offload") and strategy not in ("fsdp", "deepspeed"):
            self._error(
                "distributed",
                f"offload needs strategy fsdp or deepspeed (strategy is {strategy})",
                path + ("offload",),
            )
        machines = dist.get("num_machines")
        if strategy == "none":
            if isinstance(machines, int) and machines > 1:
                self._error(
                    "distributed",
                    "strategy none is exactly one process; num_machines > 1 needs auto, ddp,"
                    " fsdp or deepspeed",
                    path + ("num_machines",),
                )
            if isinstance(dist.get("num_processes"), int) and dist["num_processes"] > 1:
                self._error(
                    "distributed",
                    "strategy none is exactly one process; num_processes > 1 needs auto, ddp,"
                    " fsdp or deepspeed",
                    path + ("num_processes",),
                )
        quant = ir.lit(job.fields.get("quantization", ir.Lit(None)))
        if quant == "int8" and strategy in ("fsdp", "deepspeed"):
            self._error(
                "distributed",
                f"int8 quantization cannot be sharded by {strategy}; use nf4 or ddp",
                where("quantization"),
            )
        launchers.check(dist, path, self._error, self._warning)

    def _raw_keys(self, path: Path_) -> set[str]:
        node: Any = self.doc.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return set()
        return set(node) if isinstance(node, dict) else set()
