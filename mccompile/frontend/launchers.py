"""Launch files for cluster engines: Slurm, SkyPilot, Kubernetes (Kubeflow).

``check`` is the compile-time part (called from checks): every value a launcher writes
is checked here, so that a template can write it without quoting surprises; ``Slurm``
reads ``#SBATCH`` lines before any shell runs, so those values must be plain words.
``settings`` is the code-generation part (called from generate): what each template
lays out, every default filled in.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mccompile.diagnostics import Path_

Report = Callable[[str, str, Path_], None]

# where the bundle sits in the image of a Kubernetes pod; relative paths resolve against
# its parent, the pod's working directory
POD_WORKDIR = "/workspace"

_WORD = re.compile(r"[A-Za-z0-9_.-]+")
_PARTITIONS = re.compile(r"[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*")
_TIME = re.compile(
    r"(?:(?P<d>\d+)-(?P<dh>\d{1,2})(?::(?P<dm>\d{1,2})(?::(?P<ds>\d{1,2}))?)?"
    r"|(?P<h>\d+):(?P<hm>\d{1,2}):(?P<hs>\d{1,2})"
    r"|(?P<m>\d+):(?P<ms>\d{1,2})"
    r"|(?P<mins>\d+))"
)
_GPUS = re.compile(r"(?:(?P<type>[A-Za-z0-9_.-]+):)?(?P<count>[1-9][0-9]*)")
_SBATCH_OPTION = re.compile(r"--(?P<name>[a-z][a-z0-9-]*)(?:=(?P<value>[^\s'\"\\]+))?")
# options slurm.sbatch writes itself, and where their value comes from
_SBATCH_OWN = {
    "nodes": "num_machines",
    "ntasks": "one task per machine",
    "ntasks-per-node": "one task per machine",
    "partition": "slurm.partition",
    "account": "slurm.account",
    "time": "slurm.time",
    "gpus-per-node": "slurm.gpus_per_node",
    "cpus-per-task": "slurm.cpus_per_task",
}
_ACCELERATORS = re.compile(r"(?P<name>[A-Za-z0-9_.-]+)(?::(?P<count>[1-9][0-9]*))?")
_IMAGE = re.compile(
    r"[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?"
)
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def check(dist: dict[str, Any], path: Path_, error: Report, warning: Report) -> None:
    """Every launcher key of ``distributed`` (``path``), beyond what the schema checks."""
    slurm, sky, kube = dist.get("slurm"), dist.get("skypilot"), dist.get("kubernetes")
    procs = dist.get("num_processes")
    if isinstance(slurm, dict):
        _check_slurm(slurm, (*path, "slurm"), procs, error, warning)
    if isinstance(sky, dict):
        _check_skypilot(sky, (*path, "skypilot"), procs, error, warning)
    if isinstance(kube, dict):
        _check_kubernetes(kube, (*path, "kubernetes"), procs, error, warning)


def _check_slurm(
    slurm: dict[str, Any], path: Path_, procs: Any, error: Report, warning: Report
) -> None:
    partition = slurm.get("partition")
    if isinstance(partition, str) and not _PARTITIONS.fullmatch(partition):
        error(
            "slurm",
            f"slurm.partition {partition!r} is not a partition name (letters, digits, '_', '.',"
            " '-'; several joined by ',')",
            (*path, "partition"),
        )
    account = slurm.get("account")
    if isinstance(account, str) and not _WORD.fullmatch(account):
        error(
            "slurm",
            f"slurm.account {account!r} is not an account name (letters, digits, '_', '.', '-')",
            (*path, "account"),
        )
    time = slurm.get("time")
    if isinstance(time, str):
        problem = _time_problem(time)
        if problem:
            error("slurm", f"slurm.time {time!r}: {problem}", (*path, "time"))
    gpus = slurm.get("gpus_per_node")
    count = gpus if isinstance(gpus, int) else None
    if isinstance(gpus, str):
        m = _GPUS.fullmatch(gpus)
        if m is None:
            error(
                "slurm",
                f"slurm.gpus_per_node {gpus!r} must be a number or TYPE:NUMBER (a100:8)",
                (*path, "gpus_per_node"),
            )
        else:
            count = int(m["count"])
    _processes_fit(count, procs, "slurm.gpus_per_node", (*path, "gpus_per_node"), error, warning)
    extra = slurm.get("extra_args")
    for i, arg in enumerate(extra if isinstance(extra, list) else []):
        if not isinstance(arg, str):
            continue
        where = (*path, "extra_args", i)
        m = _SBATCH_OPTION.fullmatch(arg)
        if m is None:
            error(
                "slurm",
                f"slurm.extra_args item {arg!r} must be one long option, --name or"
                " --name=value, without spaces, quotes or backslashes (Slurm reads #SBATCH"
                " lines without a shell)",
                where,
            )
            continue
        own = _SBATCH_OWN.get(m["name"])
        if own:
            error(
                "slurm",
                f"slurm.extra_args sets --{m['name']}, which slurm.sbatch writes from {own}",
                where,
            )


def _time_problem(text: str) -> str | None:
    m = _TIME.fullmatch(text)
    if m is None:
        return "Slurm writes a time limit as minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
    for key in ("dm", "ds", "hm", "hs", "ms"):
        if m[key] is not None and int(m[key]) > 59:
            return f"{m[key]} minutes or seconds (at most 59)"
    if m["dh"] is not None and int(m["dh"]) > 23:
        return f"{m['dh']} hours after the days (at most 23)"
    if all(int(v) == 0 for v in m.groupdict().values() if v is not None):
        return "a time limit of zero"
    return None


def _processes_fit(
    gpus: int | None, procs: Any, what: str, where: Path_, error: Report, warning: Report
) -> None:
    """A fixed num_processes against the GPUs a launcher asks for on each machine."""
    if gpus is None or not isinstance(procs, int):
        return
    if procs > gpus:
        error(
            "distributed",
            f"num_processes is {procs} but {what} asks for {gpus} GPU(s) on each machine:"
            " one process per GPU",
            where,
        )
    elif procs < gpus:
        warning(
            "distributed",
            f"{what} asks for {gpus} GPUs on each machine, num_processes uses {procs}; the"
            " others stay idle",
            where,
        )


def _check_skypilot(
    sky: dict[str, Any], path: Path_, procs: Any, error: Report, warning: Report
) -> None:
    acc = sky.get("accelerators")
    if isinstance(acc, str):
        m = _ACCELERATORS.fullmatch(acc)
        if m is None:
            error(
                "skypilot",
                f"skypilot.accelerators {acc!r} must be NAME or NAME:COUNT (A100:8)",
                (*path, "accelerators"),
            )
        else:
            count = int(m["count"] or 1)
            what = "skypilot.accelerators"
            _processes_fit(count, procs, what, (*path, "accelerators"), error, warning)


def _check_kubernetes(
    kube: dict[str, Any], path: Path_, procs: Any, error: Report, warning: Report
) -> None:
    image = kube.get("image")
    if isinstance(image, str) and not _IMAGE.fullmatch(image):
        error(
            "kubernetes",
            f"kubernetes.image {image!r} is not an image reference"
            " (registry/name:tag or name@sha256:digest, lower case)",
            (*path, "image"),
        )
    namespace = kube.get("namespace")
    if isinstance(namespace, str) and not _DNS_LABEL.fullmatch(namespace):
        error(
            "kubernetes",
            f"kubernetes.namespace {namespace!r} is not a namespace name (at most 63 lower-case"
            " letters, digits and '-', a letter or digit at both ends)",
            (*path, "namespace"),
        )
    gpus = kube.get("gpus_per_node")
    if isinstance(gpus, int):
        what = "kubernetes.gpus_per_node"
        _processes_fit(gpus, procs, what, (*path, "gpus_per_node"), error, warning)


def _gpu_count(text: str | int | None, pattern: re.Pattern[str]) -> int | None:
    if text is None or isinstance(text, int):
        return text
    m = pattern.fullmatch(text)
    return int(m["count"] or 1) if m else None


def k8s_name(workflow_id: str) -> str:
    """A workflow id as a Kubernetes object name (a DNS label, short enough for pod names)."""
    name = re.sub(r"[^a-z0-9-]+", "-", workflow_id.lower()).strip("-")[:40].strip("-")
    return name or "train"


def settings(dist: dict[str, Any], workflow_id: str) -> dict[str, Any]:
    """What each launcher template lays out; only the launchers the config asks for."""
    procs = dist.get("num_processes", "auto")
    out: dict[str, Any] = {"num_machines": dist.get("num_machines", 1)}
    slurm = dist.get("slurm")
    if isinstance(slurm, dict):
        gpus = slurm.get("gpus_per_node")
        count = _gpu_count(gpus, _GPUS)
        extra = list(slurm.get("extra_args") or [])
        lines = (
            [f"--job-name={workflow_id}"]
            if not any(a.startswith("--job-name") for a in extra)
            else []
        )
        lines.append(f"--nodes={out['num_machines']}")
        lines.append("--ntasks-per-node=1")
        for key, option in (
            ("partition", "partition"),
            ("account", "account"),
            ("time", "time"),
            ("gpus_per_node", "gpus-per-node"),
            ("cpus_per_task", "cpus-per-task"),
        ):
            if slurm.get(key) is not None:
                lines.append(f"--{option}={slurm[key]}")
        out["slurm"] = {
            "sbatch": lines + extra,
            # written on each srun too: srun does not take it from the job in every Slurm
            # version (22.05 does not)
            "cpus": slurm.get("cpus_per_task"),
            "processes": procs if isinstance(procs, int) else count,
        }
    sky = dist.get("skypilot")
    if isinstance(sky, dict):
        resources: dict[str, Any] = {}
        if sky.get("cloud") is not None:
            resources["cloud"] = sky["cloud"]
        if sky.get("accelerators") is not None:
            resources["accelerators"] = sky["accelerators"]
        resources["use_spot"] = bool(sky.get("use_spot", False))
        if sky.get("disk_size") is not None:
            resources["disk_size"] = sky["disk_size"]
        out["skypilot"] = {
            "resources": resources,
            "processes": procs if isinstance(procs, int) else None,
        }
    kube = dist.get("kubernetes")
    if isinstance(kube, dict):
        gpus = kube.get("gpus_per_node")
        out["kubernetes"] = {
            "kind": kube.get("kind") or "TrainJob",
            "name": k8s_name(workflow_id),
            "namespace": kube.get("namespace"),
            "image": kube["image"],
            "gpus": gpus,
            "processes": procs if isinstance(procs, int) else gpus,
            "workdir": POD_WORKDIR,
            "bundle": f"{POD_WORKDIR}/{workflow_id}",
        }
    return out
