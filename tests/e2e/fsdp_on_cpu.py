"""Run a generated program under accelerate's FSDP on CPU processes (gloo).

accelerate 1.16 turns a FSDP launch into FSDP only on accelerators: AcceleratorState
upgrades MULTI_GPU (and the other MULTI_<accelerator> types) to FSDP, never MULTI_CPU,
so on CPU processes the program trains plain data parallel (its checkpoints hold no FSDP
shards). torch's fully_shard itself runs on CPU with gloo; this runner makes that one
upgrade for MULTI_CPU too and then runs the program unchanged, so its FSDP code paths
(sharded checkpoints, resuming, the gathered final save) run for real:

    accelerate launch --config_file accelerate_config.yaml --num_processes 2 \\
        fsdp_on_cpu.py train.py [options]
"""

from __future__ import annotations

import runpy
import sys

from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType

_init = AcceleratorState.__init__


def _init_with_fsdp_on_cpu(self, *args, fsdp_plugin=None, **kwargs):  # type: ignore[no-untyped-def]
    _init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    # every AcceleratorState() copies the process state (MULTI_CPU) again: upgrade each time
    plugin = fsdp_plugin or getattr(self, "fsdp_plugin", None)
    if plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = plugin


if __name__ == "__main__":
    AcceleratorState.__init__ = _init_with_fsdp_on_cpu  # type: ignore[method-assign]
    program = sys.argv.pop(1)
    sys.argv[0] = program
    runpy.run_path(program, run_name="__main__")
