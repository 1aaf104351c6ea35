"""slurm.sbatch under a real Slurm: 2 machines x 1 process train one model together.

The cluster (tests/cluster/slurm.py) has two nodes on this machine; each runs its own
slurmd, and srun starts launch.sh once on each. torch's elastic agent logs its rendezvous
(LOGLEVEL=INFO): a group rank per machine, 0 and 1, and a world size of 2. If the machine
rank were read by the batch script instead of by each node (accelerate #2816), both
machines would claim rank 0 and never form the group.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest

from tests.cluster.slurm import PARTITION, Cluster, free_port
from tests.e2e.helpers import build, trainer_yaml

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]
pytest.importorskip("trl")

ROWS = 32
STEPS = 3


def _bundle(tmp_path: Path, model: Path) -> tuple[Path, Path]:
    data = tmp_path / "t.jsonl"
    data.write_text(
        "".join(json.dumps({"text": f"Row {i}: the quick brown fox."}) + "\n" for i in range(ROWS))
    )
    config = "components:\n" + trainer_yaml(
        model, Path("run"), text_column="text", peft_adapter="lora", max_seq_length=64
    )
    config += (
        "    distributed:\n"
        "      strategy: ddp\n"
        "      num_machines: 2\n"
        "      num_processes: 1\n"
        f"      slurm: {{partition: {PARTITION}, time: '00:10:00', cpus_per_task: 1,"
        " extra_args: [--mem=0]}\n"
    )
    out = build(tmp_path, config)
    return out / "trainer" / "slurm.sbatch", data


def _submit(cluster: Cluster, sbatch: Path, cwd: Path, *args: str) -> tuple[int, str]:
    """Submit, wait until the job has left the queue; its exit status and output."""
    env = {
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_DATASETS_CACHE": str(cwd / ".hf-cache"),
        "MAIN_PROCESS_PORT": str(free_port()),
        "LOGLEVEL": "INFO",  # torch's elastic agent logs the rendezvous
    }
    result = cluster.run(
        "sbatch",
        "--parsable",
        f"--output={cwd / 'job-%j.out'}",
        str(sbatch),
        *args,
        cwd=cwd,
        extra_env=env,
    )
    job = result.stdout.strip().split(";")[0]
    deadline = time.monotonic() + 400
    while cluster.run("squeue", "--noheader", "--jobs", job, check=False).stdout.strip():
        assert time.monotonic() < deadline, cluster.logs()
        time.sleep(1)
    shown = cluster.run("scontrol", "show", "job", job).stdout
    m = re.search(r"\bExitCode=(\d+):(\d+)", shown)
    assert m, shown
    output = (cwd / f"job-{job}.out").read_text(errors="replace")
    return int(m[1]), output


def test_sbatch_trains_as_two_machines(
    slurm_cluster: Cluster, tmp_path: Path, tiny_model: Path
) -> None:
    from safetensors.torch import load_file

    sbatch, data = _bundle(tmp_path, tiny_model)
    relative = sbatch.relative_to(tmp_path)  # submitted as a user would, from the data's folder
    status, output = _submit(
        slurm_cluster, relative, tmp_path, "--dataset", data.name, "--max-steps", str(STEPS)
    )
    assert status == 0, output[-6000:]
    assert "[dry-run] the data is ready" in output  # the data step ran once, first
    assert output.count("[dry-run]") == 1
    # one rendezvous: each machine has its own group rank, the world is 2 processes
    assert sorted(re.findall(r"group_rank=(\d+)", output)) == ["0", "1"], output[-6000:]
    assert re.findall(r"group_world_size=(\d+)", output) == ["2", "2"]
    assert set(re.findall(r"global_world_sizes=\[([\d, ]+)\]", output)) == {"2"}
    run = tmp_path / "run"
    summary = json.loads((run / "training_summary.json").read_text())
    assert summary["global_step"] == STEPS
    # 4 rows per process and step on 2 processes: each step reads 8 of the 32 rows
    assert summary["epoch"] == pytest.approx(STEPS * 4 * 2 / ROWS)
    weights = load_file(str(run / "adapter_model.safetensors"))
    assert weights and all("lora_" in name for name in weights)
    assert len(list(run.rglob("adapter_model.safetensors"))) == 1 + len(
        list(run.glob("checkpoint-*"))
    )


def test_a_data_mistake_stops_the_job_once_with_exit_2(
    slurm_cluster: Cluster, tmp_path: Path, tiny_model: Path
) -> None:
    sbatch, _ = _bundle(tmp_path, tiny_model)
    status, output = _submit(slurm_cluster, sbatch, tmp_path, "--dataset", "missing.jsonl")
    assert status == 2, output[-3000:]
    assert output.count("error: dataset 'missing.jsonl' does not exist") == 1
    assert "Traceback" not in output
    assert "group_rank" not in output  # the distributed step never started
