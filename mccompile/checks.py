"""Semantic checks the schema cannot express, on resolved jobs.

Each check reports at the place the user wrote the value: the job's input
when a job set it, the component otherwise.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any

from mccompile import ir
from mccompile.errors import Diagnostics
from mccompile.fields import CLASSIFICATION_FIELDS, LORA_FIELDS, SFT_FIELDS
from mccompile.loader import Document, Path_

Where = Callable[[str], Path_]

VALUE_OPERATORS = (
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not-in",
    "contains",
    "starts-with",
    "ends-with",
    "match",
)


class Checker:
    def __init__(
        self, doc: Document, diags: Diagnostics, nested: dict[Path_, str] | None = None
    ) -> None:
        self.doc = doc
        self.diags = diags
        self.nested = nested or {}

    def _name(self, key: str, path: Path_) -> str:
        """The key as the user wrote it (``lora.rank`` for ``lora_r``)."""
        return self.nested.get(path, key)

    def _error(self, code: str, message: str, path: Path_) -> None:
        self.diags.error(code, message, path, self.doc.kpos(path))

    def _warning(self, code: str, message: str, path: Path_) -> None:
        self.diags.warning(code, message, path, self.doc.kpos(path))

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

        task = val("task")
        cid = job.component
        if task == "sft":
            for key in CLASSIFICATION_FIELDS:
                if key in given:
                    self._error(
                        "wrong-task",
                        f"'{key}' applies to task: classification, not sft",
                        where(key),
                    )
            if is_set("text_column") and (is_set("prompt_column") or is_set("response_column")):
                self._error(
                    "column-conflict",
                    f"component '{cid}' gives both text_column and prompt_column/response_column;"
                    " use one kind of data",
                    where("text_column"),
                )
            elif is_set("prompt_column") != is_set("response_column"):
                have, lack = (
                    ("prompt_column", "response_column")
                    if is_set("prompt_column")
                    else ("response_column", "prompt_column")
                )
                self._error("column-pair", f"'{have}' needs '{lack}' as well", where(have))
            if is_set("system_column") and not is_set("prompt_column"):
                self._error(
                    "column-pair",
                    "'system_column' goes with prompt_column and response_column",
                    where("system_column"),
                )
            if "messages_column" in given and (is_set("text_column") or is_set("prompt_column")):
                self._error(
                    "column-conflict",
                    "'messages_column' is for chat data; it cannot go with text_column or"
                    " prompt_column",
                    where("messages_column"),
                )
            if val("train_on_prompt") and is_set("text_column"):
                self._warning(
                    "no-effect",
                    "train_on_prompt has no effect with text_column (every token carries loss)",
                    where("train_on_prompt"),
                )
        elif task == "classification":
            for key in SFT_FIELDS:
                if key in given:
                    self._error(
                        "wrong-task",
                        f"'{key}' applies to task: sft, not classification",
                        where(key),
                    )
        if val("fp16") is True and val("bf16") is True:
            self._error("precision", "fp16 and bf16 are both true; choose one", where("bf16"))
        lora = val("peft_adapter") == "lora" or not isinstance(f.get("peft_adapter"), ir.Lit)
        if not lora:
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
        self._distributed(job, where)

    def _distributed(self, job: ir.Job, where: Where) -> None:
        dist = ir.lit(job.fields["distributed"]) or {}
        strategy = dist.get("strategy", "none")
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
                    "num_machines > 1 needs a strategy (ddp, fsdp or deepspeed)",
                    path + ("num_machines",),
                )
            if isinstance(dist.get("num_processes"), int) and dist["num_processes"] > 1:
                self._error(
                    "distributed",
                    "num_processes > 1 needs a strategy (ddp, fsdp or deepspeed)",
                    path + ("num_processes",),
                )
        quant = ir.lit(job.fields.get("quantization", ir.Lit(None)))
        if quant == "int8" and strategy in ("fsdp", "deepspeed"):
            self._error(
                "distributed",
                f"int8 quantization cannot be sharded by {strategy}; use nf4 or ddp",
                where("quantization"),
            )

    def _raw_keys(self, path: Path_) -> set[str]:
        node: Any = self.doc.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return set()
        return set(node) if isinstance(node, dict) else set()

    # -- datasets ----------------------------------------------------------------

    def dataset_job(self, job: ir.Job, where: Where) -> None:
        f = job.fields

        def val(key: str) -> Any:
            return ir.lit(f[key]) if key in f else None

        if job.kind == "load":
            if job.provider == "local":
                if "loader" not in f:
                    self._error(
                        "missing-key",
                        f"a local loader needs 'loader' (json, csv, parquet or text) in"
                        f" component '{job.component}'",
                        where("loader"),
                    )
                has_files = val("data_files") is not None or not isinstance(
                    f.get("data_files", ir.Lit(None)), ir.Lit
                )
                has_dir = val("data_dir") is not None or not isinstance(
                    f.get("data_dir", ir.Lit(None)), ir.Lit
                )
                if has_files == has_dir:
                    self._error(
                        "local-files",
                        f"a local loader needs exactly one of data_files and data_dir"
                        f" (component '{job.component}')",
                        where("data_files" if has_files else "loader"),
                    )
            if val("trust_remote_code") is True:
                self._error(
                    "unsupported",
                    "trust_remote_code: true has no effect: the datasets library (5.x) runs no"
                    " dataset loading scripts; load the data files instead",
                    where("trust_remote_code"),
                )
            if val("streaming") is True:
                if isinstance(val("fraction"), (int, float)) and val("fraction") < 1:
                    self._error(
                        "streaming",
                        "fraction needs the dataset's length, which a stream does not have;"
                        " filter or select the rows after loading instead",
                        where("fraction"),
                    )
                if "[" in str(val("split") or ""):
                    self._error(
                        "streaming",
                        "split slicing such as train[:10%] needs the dataset's length, which a"
                        " stream does not have",
                        where("split"),
                    )
            return
        method = job.method
        if method == "select":
            axis = val("axis")
            need, other = ("columns", "indices") if axis == "columns" else ("indices", "columns")
            if axis in ("columns", "rows"):
                if need not in f:
                    self._error(
                        "missing-key",
                        f"select with axis: {axis} needs '{need}'",
                        where("axis"),
                    )
                if other in f:
                    self._error(
                        "wrong-axis",
                        f"'{other}' does not apply to select with axis: {axis}",
                        where(other),
                    )
            self._need(job, "dataset", where)
        elif method == "map":
            self._need(job, "dataset", where)
            self._need(job, "template", where)
            template = val("template")
            if isinstance(template, str):
                problem = template_problem(template)
                if problem:
                    self._error("template", f"map template: {problem}", where("template"))
        elif method == "filter":
            self._need(job, "dataset", where)
            self._need(job, "condition", where)
            cond = val("condition")
            base = where("condition")
            for message, sub in condition_problems(cond):
                path = (*base, *sub)
                self.diags.error(
                    "condition", f"filter condition: {message}", path, self.doc.pos(path)
                )
        elif method == "concat":
            self._need(job, "datasets", where)

    def streams(self, wf: ir.Workflow, locate: Callable[[str], Where]) -> None:
        """What a stream (a loader with streaming: true) cannot feed: its length is unknown."""
        streamed = streamed_jobs(wf)
        for job in wf.jobs:
            where = locate(job.id)
            fed = any(
                isinstance(r, ir.JobRef) and r.job in streamed
                for v in job.fields.values()
                for r in ir.refs(v)
            )
            if not fed:
                continue
            if job.method == "select" and ir.lit(job.fields.get("axis", ir.Lit(None))) == "rows":
                self._error(
                    "streaming",
                    f"select rows needs the dataset's length; job '{job.id}' reads a stream",
                    where("indices"),
                )
            if job.kind != "train":
                continue
            max_steps = job.fields.get("max_steps", ir.Lit(None))
            if isinstance(max_steps, ir.Lit) and max_steps.value is None:
                self._error(
                    "streaming",
                    f"job '{job.id}' trains on a stream, whose length is unknown: set max_steps",
                    where("max_steps"),
                )
            if "validation_split" in job.explicit:
                self._error(
                    "streaming",
                    "validation_split cannot carve rows out of a stream; give an eval_dataset",
                    where("validation_split"),
                )
            labels = job.fields.get("labels", ir.Lit(None))
            classification = ir.lit(job.fields["task"]) == "classification"
            if classification and isinstance(labels, ir.Lit) and labels.value is None:
                self._error(
                    "streaming",
                    "a stream cannot be read ahead for its classes: give labels",
                    where("labels"),
                )

    def _need(self, job: ir.Job, key: str, where: Where) -> None:
        if key not in job.fields:
            self._error(
                "missing-key",
                f"{job.method} needs '{key}' (in component '{job.component}' or the job's input)",
                where(key),
            )


def streamed_jobs(wf: ir.Workflow) -> set[str]:
    """The jobs whose result is a stream: streaming loaders and what reads them."""
    streamed: set[str] = set()
    for job in wf.jobs:
        loads_stream = job.kind == "load" and ir.lit(job.fields.get("streaming", ir.Lit(False)))
        reads_stream = job.kind == "op" and any(
            isinstance(r, ir.JobRef) and r.job in streamed
            for v in job.fields.values()
            for r in ir.refs(v)
        )
        if loads_stream is True or reads_stream:
            streamed.add(job.id)
    return streamed


def template_problem(template: str) -> str | None:
    """Why a ``{column}`` template is malformed, or None."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"{exc} (write {{{{ and }}}} for literal braces)"
    for _text, name, spec, conversion in parts:
        if name is None:
            continue
        if name == "":
            return "an empty placeholder {} names no column"
        if spec or conversion or not re.fullmatch(r"[^.\[\]{}!:]+", name):
            return (
                f"placeholder '{{{name}{'!' + conversion if conversion else ''}"
                f"{':' + spec if spec else ''}}}' is not a plain {{column}}"
            )
    return None


def condition_problems(cond: Any, path: Path_ = ()) -> list[tuple[str, Path_]]:
    """Problems of a filter condition the schema does not see, with where they are."""
    out: list[tuple[str, Path_]] = []
    if not isinstance(cond, dict):
        return out
    for key in ("all", "any"):
        if key in cond:
            items = cond[key]
            for i, sub in enumerate(items if isinstance(items, list) else []):
                out.extend(condition_problems(sub, (*path, key, i)))
            return out
    if "not" in cond:
        return condition_problems(cond["not"], (*path, "not"))
    op = cond.get("operator")
    label = f"{cond.get('column')} {op}"
    value = cond.get("value")
    if op in VALUE_OPERATORS and "value" not in cond:
        out.append((f"'{label}' needs a 'value'", path))
    if op in ("empty", "not-empty") and "value" in cond:
        out.append((f"'{label}' takes no 'value'", (*path, "value")))
    if op in ("in", "not-in") and "value" in cond and not isinstance(value, list):
        out.append((f"'{label}' needs a list as 'value'", (*path, "value")))
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if op in ("gt", "gte", "lt", "lte") and cond.get("length") and not numeric:
        out.append((f"'{label}' with length: true compares with a number", (*path, "value")))
    if op == "match" and isinstance(value, str):
        try:
            re.compile(value)
        except re.error as exc:
            out.append((f"'{label}': invalid regular expression ({exc})", (*path, "value")))
    if op == "match" and "value" in cond and not isinstance(value, str):
        out.append((f"'{label}' needs a regular expression (text) as 'value'", (*path, "value")))
    return out
