"""The names of the training stack that programs use: optimizers, packages, settings groups.

One table each, read by the program model (:mod:`mccompile.codegen.generate`).
"""

from __future__ import annotations

from typing import Any

from mccompile.tasks.base import KERNELS_REQUIREMENT
from mccompile.tasks.fields import BNB4_FIELDS, LORA_FIELDS

# optimizer in the config -> (transformers' optim name, extra requirement or None)
OPTIMIZERS: dict[str, tuple[str, str | None]] = {
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


# tested version ranges of what a program may need
REQUIREMENTS: dict[str, str] = {
    "torch": "torch>=2.4",
    "transformers": "transformers>=5.24,<6",
    "datasets": "datasets>=5.2,<6",
    "accelerate": "accelerate>=1.15,<2",
    "trl": "trl>=1.16,<1.17",
    "peft": "peft>=0.21.2,<0.22",
    "bitsandbytes": "bitsandbytes>=0.50.2,<0.51",
    "tensorboard": "tensorboard>=2.21",
    "lomo-optim": "lomo-optim>=0.1.1",
    "galore-torch": "galore-torch>=1.0",
    "grokadamw": "grokadamw>=0.1.2",
    "torch-optimi": "torch-optimi>=0.2.1",
    "schedulefree": "schedulefree>=1.4",
    "deepspeed": "deepspeed>=0.16",
    "liger-kernel": "liger-kernel>=0.6",
    "wandb": "wandb>=0.18",
    "mlflow": "mlflow>=2.10",
    "comet_ml": "comet_ml>=3.40",
    "clearml": "clearml>=1.16",
    "trackio": "trackio>=0.2",
    "matplotlib": "matplotlib>=3.8",
    "flash-attn": "flash-attn>=2.3.3",
    "flash-attn-3": "flash-attn-3",
    "kernels": KERNELS_REQUIREMENT,
    "pandas": "pandas>=2.0",
}


# attention kernel -> (the package it needs, the module that package provides)
ATTENTION_PACKAGES: dict[str, tuple[str, str]] = {
    "flash_attention_2": ("flash-attn", "flash_attn"),
    "flash_attention_3": ("flash-attn-3", "flash_attn_interface"),
}


HUB_KERNELS = ("kernels", "kernels")  # attn_implementation: owner/name, from the hub


SCHEDULER_KWARGS: dict[str, dict[str, Any]] = {
    "cosine_with_min_lr": {"min_lr_rate": 0.1},
}


QUANT_TYPES = {"nf4": "nf4", "int4": "fp4"}


TORCH_DTYPES = {
    "float32": "torch.float32",
    "float16": "torch.float16",
    "bfloat16": "torch.bfloat16",
}


# helpers that other helpers call
HELPER_NEEDS = {
    "report": {"size", "first_rows"},
    "filter_rows": {"first_rows", "progress"},
    "filter_with": {"first_rows", "progress"},
    "map_template": {"first_rows", "progress"},
    "concat_datasets": {"align_types"},
    "interleave_datasets": {"align_types", "first_rows"},
    "deduplicate_rows": {"first_rows"},
}


# standard-library modules each dataset helper needs
HELPER_IMPORTS = {
    "open_dataset": ["os"],
    "load_hub": ["os"],
    "load_local": ["os"],
    "filter_rows": ["re"],
    "re": ["re"],
    "map_template": ["string"],
    "interleave_datasets": ["collections"],
    "deduplicate_rows": ["hashlib"],
}


# trainer fields shown in the settings block: (group, field, constant)
SETTING_GROUPS: list[tuple[str, list[str]]] = [
    ("Model", ["model", "model_revision", "trust_remote_code", "attn_implementation"]),
    ("Data", ["max_seq_length", "validation_split"]),  # a task lists its own keys here
    ("LoRA", list(LORA_FIELDS)),
    ("Quantization", ["quantization", *BNB4_FIELDS]),
    (
        "Optimization",
        [
            "learning_rate",
            "num_epochs",
            "max_steps",
            "per_device_train_batch_size",
            "per_device_eval_batch_size",
            "gradient_accumulation_steps",
            "optimizer",
            "lr_scheduler_type",
            "lr_scheduler_kwargs",
            "warmup_steps",
            "warmup_ratio",
            "weight_decay",
            "max_grad_norm",
            "neftune_noise_alpha",
            "gradient_checkpointing",
            "fp16",
            "bf16",
            "tf32",
            "seed",
        ],
    ),
    (
        "Speed",
        [
            "group_by_length",
            "use_liger_kernel",
            "torch_compile",
            "dataloader_num_workers",
            "dataset_num_proc",
            "ddp_timeout",
        ],
    ),
    (
        "Logging, evaluation and checkpoints",
        [
            "logging_steps",
            "eval_strategy",
            "eval_steps",
            "evals_per_epoch",
            "save_strategy",
            "save_steps",
            "saves_per_epoch",
            "save_total_limit",
            "output_dir",
            "resume_from_checkpoint",
            "report_to",
            "run_name",
            "plot_loss",
        ],
    ),
    ("Hub", ["push_to_hub", "hub_model_id", "hub_private_repo"]),
]


# settings the program reads only when the config turns on the one named
READ_WHEN = {
    "evals_per_epoch": "evals_per_epoch",
    "saves_per_epoch": "saves_per_epoch",
    "plot_loss": "plot_loss",
    "push_to_hub": "push_to_hub",
    "hub_model_id": "push_to_hub",
    "hub_private_repo": "push_to_hub",
}


# what dataset_num_proc: auto becomes in the program
AUTO_NUM_PROC = "max(1, min(8, (os.cpu_count() or 1) // 2))"


# the launch file of each cluster engine under distributed:, written when the config asks
LAUNCH_FILES = {
    "slurm": "slurm.sbatch",
    "skypilot": "skypilot.yaml",
    "kubernetes": "kubernetes.yaml",
}
