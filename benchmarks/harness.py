"""Measurement harness: runs a training program unchanged, in this process, and records what it does.

    python benchmarks/harness.py train   --metrics OUT.json [--sampling S] -- PROGRAM.py [options]
    python benchmarks/harness.py padding --metrics OUT.json [--sampling S] -- PROGRAM.py [options]
    python benchmarks/harness.py prep    --metrics OUT.json --program train.py --dataset FILE
                                         [--num-proc N] [--force-num-proc]

``train`` runs PROGRAM (a generated train.py or benchmarks/handwritten_sft.py) as ``__main__``
after hooking TRL's SFTTrainer (the class both programs use), and writes OUT.json with:

* ``steps``: per optimizer step, the time (perf_counter, seconds since the harness started)
  and the cumulative *real* and *processed* token counts of the micro-batches trained so far.
  Real tokens = the sum of the lengths of the examples the collator received (for a packed
  row: the sum of its packed sequences), i.e. every non-padding token, excluding nothing else.
  Processed tokens = ``input_ids.numel()`` of the collated batch (real + padding).
  The counts are taken from each batch as the collator builds it and consumed in order by
  ``training_step`` (a FIFO), so prefetching by the data loader does not shift them.
* phase times: trainer construction (and within it TRL's dataset preparation), train begin/end.
* the model's storage in bytes (parameters + buffers, as stored: 4-bit weights count packed).

With ``--sampling random|group_by_length`` (train and padding) the harness sets the trainer's
``train_sampling_strategy`` before it builds its data loader: a what-if, not what the program does.

``padding`` runs PROGRAM up to ``trainer.train()`` and, instead of training, collates one whole
epoch through the trainer's own data loader (its sampler, seed and collator), counting real and
processed tokens.

``prep`` imports a generated train.py as a module and times its data preparation: loading,
checking and tokenizing (``prepare_data``), then the preparation TRL applies to the tokenized
rows inside SFTTrainer (labels, truncation, filtering, packing), with DATASET_NUM_PROC = N.
``--force-num-proc`` makes the program's own tokenization use N processes even below its
2,000-row threshold.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import runpy
import sys
import time
import types

T0 = time.perf_counter()


def now() -> float:
    return time.perf_counter() - T0


class StopPadding(Exception):
    """Raised by the padding probe instead of training."""


def hook_trainer(metrics: dict, mode: str, sampling: str | None = None) -> None:
    import torch
    from transformers import TrainerCallback
    from trl.trainer import sft_trainer

    metrics["t_hooked"] = now()  # TRL, transformers and torch are imported by now
    cls = sft_trainer.SFTTrainer
    fifo: collections.deque = collections.deque()
    totals = {"real": 0, "processed": 0, "micro_batches": 0}
    steps: list = []
    metrics["steps"] = steps
    metrics["prepare_dataset_s"] = 0.0

    original_prepare = cls._prepare_dataset

    def _prepare_dataset(self, *args, **kwargs):
        started = now()
        try:
            return original_prepare(self, *args, **kwargs)
        finally:
            metrics["prepare_dataset_s"] += now() - started

    class Timing(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            metrics["t_train_begin"] = now()

        def on_step_end(self, args, state, control, **kwargs):
            if torch.cuda.is_available():
                torch.cuda.synchronize()  # the step's kernels are done when its time is taken
            steps.append(
                {
                    "step": state.global_step,
                    "t": now(),
                    "cpu": time.process_time(),  # CPU time of the whole process (all threads)
                    "real": totals["real"],
                    "processed": totals["processed"],
                    "micro_batches": totals["micro_batches"],
                }
            )

        def on_train_end(self, args, state, control, **kwargs):
            metrics["t_train_end"] = now()
            if torch.cuda.is_available():
                metrics["cuda_max_memory_allocated"] = torch.cuda.max_memory_allocated()
                metrics["cuda_max_memory_reserved"] = torch.cuda.max_memory_reserved()
                metrics["cuda_device"] = torch.cuda.get_device_name()

    attention = {"useful": 0, "computed": 0}
    metrics["attention_scores"] = attention
    first_batches: list = []  # the sequence lengths of the first batches, for the attention benchmark
    metrics["first_batches"] = first_batches

    def count_collator(collate):
        def wrapped(examples):
            batch = collate(examples)
            real = 0
            sequences = []
            for example in examples:
                if "seq_lengths" in example:
                    real += int(sum(example["seq_lengths"]))
                    sequences += [int(n) for n in example["seq_lengths"]]
                else:
                    real += len(example["input_ids"])
                    sequences.append(len(example["input_ids"]))
            shape = batch["input_ids"].shape
            fifo.append((real, int(batch["input_ids"].numel())))
            # query x key scores per layer and head: the ones between tokens of one sequence are useful,
            # the attention kernel computes rows x length^2 (a mask does not make it skip the others)
            attention["useful"] += sum(n * n for n in sequences)
            attention["computed"] += int(shape[0]) * int(shape[-1]) ** 2
            if len(first_batches) < 16:
                first_batches.append({"sequences": sequences, "shape": [int(x) for x in shape]})
            return batch

        return wrapped

    original_init = cls.__init__

    def __init__(self, *args, **kwargs):
        metrics["t_trainer_init_begin"] = now()
        original_init(self, *args, **kwargs)
        metrics["t_trainer_init_end"] = now()
        self.data_collator = count_collator(self.data_collator)
        metrics["program_sampling"] = self.args.train_sampling_strategy
        if sampling:  # a what-if: another sampler than the program's
            self.args.train_sampling_strategy = sampling
        metrics["sampling"] = self.args.train_sampling_strategy
        self.add_callback(Timing())
        model = self.model
        metrics["model_storage_bytes"] = sum(
            p.numel() * p.element_size() for p in model.parameters()
        ) + sum(b.numel() * b.element_size() for b in model.buffers())
        metrics["trainable_parameters"] = sum(
            p.numel() for p in model.parameters() if p.requires_grad
        )
        metrics["torch_threads"] = torch.get_num_threads()
        metrics["train_rows"] = (
            len(self.train_dataset) if hasattr(self.train_dataset, "__len__") else None
        )
        metrics["padding_free"] = bool(getattr(self, "padding_free", False))

    original_training_step = cls.training_step

    def training_step(self, *args, **kwargs):
        result = original_training_step(self, *args, **kwargs)
        real, processed = fifo.popleft()
        totals["real"] += real
        totals["processed"] += processed
        totals["micro_batches"] += 1
        return result

    def probe_train(self, *args, **kwargs):
        """The padding probe: one epoch of collated batches, no training."""
        loader = self.get_train_dataloader()
        lengths = []
        for _batch in loader:
            real, processed = fifo.popleft()
            totals["real"] += real
            totals["processed"] += processed
            totals["micro_batches"] += 1
            lengths.append(processed)
        dataset = self.train_dataset
        if "seq_lengths" in dataset.column_names:  # packed rows: how full the bins are
            row_lengths = [len(ids) for ids in dataset["input_ids"]]
            metrics["packed_rows"] = len(row_lengths)
            metrics["packed_row_tokens"] = sum(row_lengths)
            metrics["max_length"] = self.args.max_length
        metrics["epoch"] = dict(totals)
        metrics["sampling"] = self.args.train_sampling_strategy
        raise StopPadding

    cls._prepare_dataset = _prepare_dataset
    cls.__init__ = __init__
    cls.training_step = training_step
    if mode == "padding":
        cls.train = probe_train


def run_program(argv: list[str], metrics: dict) -> int:
    program, *rest = argv
    sys.argv = [program, *rest]
    sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
    code = 0
    try:
        runpy.run_path(program, run_name="__main__")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except StopPadding:
        code = 0
    metrics["t_end"] = now()
    metrics["exit_code"] = code
    return code


def prep(args: argparse.Namespace, metrics: dict) -> int:
    import datasets

    metrics["t_datasets_imported"] = now()
    spec = importlib.util.spec_from_file_location("generated_train", args.program)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    metrics["t_module_imported"] = now()
    if args.num_proc:
        module.DATASET_NUM_PROC = args.num_proc
    metrics["num_proc"] = module.DATASET_NUM_PROC
    metrics["tokenize_num_proc"] = module.DATASET_NUM_PROC if args.force_num_proc else None
    if args.force_num_proc:
        original_map = datasets.Dataset.map

        def map_with_procs(self, *a, **kw):
            if str(kw.get("desc", "")).startswith("tokenizing") and not kw.get("num_proc"):
                kw["num_proc"] = args.num_proc
            return original_map(self, *a, **kw)

        datasets.Dataset.map = map_with_procs

    phases: dict = collections.defaultdict(float)
    for name in ("open_dataset", "load_local", "load_hub", "check_data", "tokenize"):
        if hasattr(module, name):
            original = getattr(module, name)

            def timed(*a, _original=original, _name=name, **kw):
                started = now()
                try:
                    return _original(*a, **kw)
                finally:
                    phases[_name] += now() - started

            setattr(module, name, timed)

    started = now()
    tokenizer = module.load_tokenizer()
    metrics["load_tokenizer_s"] = now() - started
    program_args = module.parse_args(["--dataset", args.dataset, "--output-dir", args.output_dir])
    started = now()
    train_data, _ = module.prepare_data(program_args, tokenizer)
    metrics["prepare_data_s"] = now() - started
    metrics["phases_s"] = dict(phases)
    metrics["rows"] = len(train_data)

    import trl  # noqa: F401  (imported here so that it is not counted in the program's own preparation)
    from trl.trainer.sft_trainer import SFTTrainer

    metrics["t_trl_imported"] = now()
    config = module.training_config(program_args, False, "fp32")  # the run's precision on a CPU
    if (config.dataset_kwargs or {}).get("skip_prepare_dataset"):
        # the program's rows are final: SFTTrainer makes no pass over them
        metrics["trl_passes_s"] = {}
        metrics["trl_prepare_dataset_s"] = 0.0
        metrics["trl_rows"] = len(train_data)
        metrics["t_end"] = now()
        return 0
    fake_self = types.SimpleNamespace(
        completion_only_loss=True, _tokenizer=tokenizer, chat_template=None
    )
    passes: dict = collections.defaultdict(float)
    for method in ("map", "filter"):
        original_method = getattr(datasets.Dataset, method)

        def timed_pass(self, *a, _original=original_method, **kw):
            started = now()
            try:
                return _original(self, *a, **kw)
            finally:
                passes[str(kw.get("desc") or "other").split(" (")[0]] += now() - started

        setattr(datasets.Dataset, method, timed_pass)
    metrics["trl_passes_s"] = passes
    started = now()
    prepared = SFTTrainer._prepare_dataset(
        fake_self, train_data, tokenizer, config, module.PACKING, None, "train"
    )
    metrics["trl_prepare_dataset_s"] = now() - started
    metrics["trl_rows"] = len(prepared)
    metrics["t_end"] = now()
    return 0


def main() -> int:
    argv = sys.argv[1:]
    rest: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, rest = argv[:cut], argv[cut + 1 :]
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["train", "padding", "prep"])
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--sampling", choices=["random", "group_by_length"], default=None)
    parser.add_argument("--program")
    parser.add_argument("--dataset")
    parser.add_argument("--output-dir", default="./benchmarks/.cache/runs/prep")
    parser.add_argument(
        "--num-proc", type=int, default=0, help="0: the program's own DATASET_NUM_PROC"
    )
    parser.add_argument("--force-num-proc", action="store_true")
    args = parser.parse_args(argv)
    metrics: dict = {"mode": args.mode, "argv": rest}
    rank = int(os.environ.get("RANK", "0") or 0)
    if rank:  # under accelerate launch: each process writes its own file; rank 0 the one named
        args.metrics = f"{args.metrics}.rank{rank}"
    metrics["rank"] = rank
    metrics["world_size"] = int(os.environ.get("WORLD_SIZE", "1") or 1)
    try:
        if args.mode == "prep":
            code = prep(args, metrics)
        else:
            hook_trainer(metrics, args.mode, args.sampling)
            code = run_program(rest, metrics)
    finally:
        with open(args.metrics, "w") as handle:
            json.dump(metrics, handle, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
