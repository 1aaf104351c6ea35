"""Launch files for cluster engines: written only when asked, read by the engines' own parsers.

Slurm runs for real in tests/cluster/test_slurm.py. Here: SkyPilot's own parser
(``sky.Task.from_yaml``, offline), the Kubeflow CRDs' OpenAPI schemas (tests/cluster/crds,
copied from the kubeflow/trainer repository), and the shell that maps each engine's
variables to launch.sh's, run with the variables the engines set.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import subprocess
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mccompile.cli import main
from mccompile.codegen.render import RenderError, sbatch, sh, yaml_scalar

CRDS = Path(__file__).parent / "cluster" / "crds"
ENGINE_FILES = ("slurm.sbatch", "skypilot.yaml", "kubernetes.yaml")


def _build(tmp_path: Path, distributed: str) -> Path:
    config = tmp_path / "c.yaml"
    config.write_text(
        "components:\n  - id: trainer\n    type: model-trainer\n    model: ./m\n"
        "    distributed:\n" + "".join(f"      {line}\n" for line in distributed.splitlines())
    )
    assert main(["build", str(config), "-o", str(tmp_path / "out"), "--force"]) == 0
    return tmp_path / "out" / "trainer"


ALL = """\
strategy: ddp
num_machines: 2
slurm: {partition: gpu, account: ml, time: "1-00:00:00", gpus_per_node: "h100:8",
        cpus_per_task: 64, extra_args: [--mem=0, --exclusive]}
skypilot: {accelerators: "H100:8", cloud: gcp, use_spot: true, disk_size: 512}
kubernetes: {image: "ghcr.io/acme/train:1.2", namespace: ml, gpus_per_node: 8}
"""


def test_no_engine_file_unless_asked(tmp_path: Path) -> None:
    bundle = _build(tmp_path, "strategy: ddp")
    assert not [name for name in ENGINE_FILES if (bundle / name).exists()]
    only_slurm = _build(tmp_path, "slurm: {}")
    assert [name for name in ENGINE_FILES if (only_slurm / name).exists()] == ["slurm.sbatch"]


def test_sbatch_lines_are_literal_and_the_script_parses(tmp_path: Path) -> None:
    script = _build(tmp_path, ALL) / "slurm.sbatch"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    lines = script.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    options = [line.split(" ", 1)[1] for line in lines if line.startswith("#SBATCH ")]
    assert options == [
        "--job-name=trainer",
        "--nodes=2",
        "--ntasks-per-node=1",
        "--partition=gpu",
        "--account=ml",
        "--time=1-00:00:00",
        "--gpus-per-node=h100:8",
        "--cpus-per-task=64",
        "--mem=0",
        "--exclusive",
    ]
    # Slurm stops reading #SBATCH at the first command: every option comes before it
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    assert all(i < first_command for i, line in enumerate(lines) if line.startswith("#SBATCH"))


def _run_mapping(script: str, env: dict[str, str], bundle: Path) -> dict[str, str]:
    """Run an engine's start-up script with a stand-in launch.sh that reports its environment."""
    (bundle / "launch.sh").write_text(
        "for v in NUM_MACHINES MACHINE_RANK MAIN_PROCESS_IP MAIN_PROCESS_PORT NUM_PROCESSES \\\n"
        '  RANK WORLD_SIZE; do echo "$v=${!v-unset}"; done\necho "ARGS=$*"\n'
    )
    result = subprocess.run(
        ["bash", "-c", script, "launch.sh", "--dataset", "./data/a b.json"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=bundle.parent,
    )
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def test_skypilot_reads_the_task(tmp_path: Path) -> None:
    sky = pytest.importorskip("sky")
    bundle = _build(tmp_path, ALL)
    task = sky.Task.from_yaml(str(bundle / "skypilot.yaml"))
    assert task.num_nodes == 2
    (resources,) = list(task.resources)
    assert resources.accelerators == {"H100": 8}
    assert str(resources.cloud).lower() == "gcp"
    assert resources.use_spot is True
    assert resources.disk_size == 512
    assert task.envs == {"BUNDLE": "trainer", "ARGS": ""}
    assert 'pip install -r "$BUNDLE/requirements.txt"' in task.setup
    # the run script, with the variables SkyPilot sets on the second of two nodes
    env = {
        "BUNDLE": "trainer",
        "ARGS": "--dataset ./data/x.json",
        "SKYPILOT_NUM_NODES": "2",
        "SKYPILOT_NODE_RANK": "1",
        "SKYPILOT_NODE_IPS": "10.0.0.5\n10.0.0.6",
        "SKYPILOT_NUM_GPUS_PER_NODE": "8",
    }
    seen = _run_mapping(task.run, env, bundle)
    assert seen["NUM_MACHINES"] == "2"
    assert seen["MACHINE_RANK"] == "1"
    assert seen["MAIN_PROCESS_IP"] == "10.0.0.5"  # the head node, first of the list
    assert seen["NUM_PROCESSES"] == "8"
    assert seen["ARGS"] == "--dataset ./data/x.json"


def test_skypilot_rejects_what_mccompile_must_not_write(tmp_path: Path) -> None:
    """The parser is strict: the check above would catch a wrong key in the template."""
    sky = pytest.importorskip("sky")
    bundle = _build(tmp_path, ALL)
    text = (bundle / "skypilot.yaml").read_text().replace("disk_size:", "disk_sizes:")
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(Exception, match="disk_size"):
        sky.Task.from_yaml(str(tmp_path / "bad.yaml"))


def _strict(schema: Any) -> Any:
    """The CRD schema as the API server applies it with strict field validation (kubectl's
    default): an object with declared properties takes no other field."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def _crd_validator(file: str, manifest: dict[str, Any]) -> Any:
    jsonschema = pytest.importorskip("jsonschema")
    crd = yaml.safe_load((CRDS / file).read_text())
    group, version = manifest["apiVersion"].split("/")
    assert crd["spec"]["group"] == group
    assert crd["spec"]["names"]["kind"] == manifest["kind"]
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    schema = _strict(served["schema"]["openAPIV3Schema"])
    return jsonschema.Draft4Validator(schema)


@pytest.mark.parametrize(
    ("kind", "crd"),
    [
        ("TrainJob", "trainer.kubeflow.org_trainjobs.yaml"),
        ("PyTorchJob", "kubeflow.org_pytorchjobs.yaml"),
    ],
)
def test_kubernetes_manifest_passes_the_crd_schema(tmp_path: Path, kind: str, crd: str) -> None:
    bundle = _build(tmp_path, ALL.replace("gpus_per_node: 8}", f"gpus_per_node: 8, kind: {kind}}}"))
    manifest = yaml.safe_load((bundle / "kubernetes.yaml").read_text())
    validator = _crd_validator(crd, manifest)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]
    assert errors == []
    assert manifest["metadata"] == {"name": "trainer", "namespace": "ml"}
    # the same validator refuses a misspelt field and a wrong type
    broken = yaml.safe_load((bundle / "kubernetes.yaml").read_text())
    if kind == "TrainJob":
        broken["spec"]["trainer"]["numNode"] = broken["spec"]["trainer"].pop("numNodes")
        broken["spec"]["trainer"]["numProcPerNode"] = "8"
        assert manifest["spec"]["trainer"]["numNodes"] == 2
        assert manifest["spec"]["trainer"]["resourcesPerNode"]["limits"] == {"nvidia.com/gpu": 8}
        container = manifest["spec"]["trainer"]
    else:
        broken["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "1"
        broken["spec"]["nprocPerNode"] = 8
        specs = manifest["spec"]["pytorchReplicaSpecs"]
        assert (specs["Master"]["replicas"], specs["Worker"]["replicas"]) == (1, 1)
        container = specs["Worker"]["template"]["spec"]["containers"][0]
    assert len(list(validator.iter_errors(broken))) == 2
    # the pod's command, with the operator's variables for the second of two nodes
    command = container["command"]
    assert command[:2] == ["bash", "-c"]
    bundle_in_pod = tmp_path / "workspace" / "trainer"
    bundle_in_pod.mkdir(parents=True)
    script = command[2].replace("/workspace", str(tmp_path / "workspace"))
    env = {
        "PET_NNODES": "2",
        "PET_NODE_RANK": "1",
        "PET_MASTER_ADDR": "trainer-node-0-0.trainer",
        "PET_MASTER_PORT": "29400",
        "PET_NPROC_PER_NODE": "8",
        "RANK": "1",
        "WORLD_SIZE": "16",
    }
    seen = _run_mapping(script, env, bundle_in_pod)
    assert seen["NUM_MACHINES"] == "2"
    assert seen["MACHINE_RANK"] == "1"
    assert seen["MAIN_PROCESS_IP"] == "trainer-node-0-0.trainer"
    assert seen["MAIN_PROCESS_PORT"] == "29400"
    assert seen["NUM_PROCESSES"] == "8"
    assert seen["ARGS"] == "--dataset ./data/a b.json"
    if kind == "PyTorchJob":  # its pod-level RANK / WORLD_SIZE would mislead a single process
        assert (seen["RANK"], seen["WORLD_SIZE"]) == ("unset", "unset")


HOSTILE = ["a b", "it's", '"; rm -rf ~; "', "$(id)", "`id`", "x\ny", "\\", "ünï", "--x", "#c"]


@pytest.mark.parametrize("value", HOSTILE)
def test_shell_and_yaml_filters_round_trip_hostile_text(value: str) -> None:
    assert shlex.split(sh(value)) == [value]
    assert yaml.safe_load(f"key: {yaml_scalar(value)}\n") == {"key": value}


@pytest.mark.parametrize("value", [*HOSTILE, "--mem 1G", "--x='y'", "--x=$(id)x\\"])
def test_sbatch_filter_refuses_anything_but_a_plain_option(value: str) -> None:
    if value.startswith("--") and " " not in value and "'" not in value and "\\" not in value:
        assert sbatch(value) == value
    else:
        with pytest.raises(RenderError):
            sbatch(value)


LAUNCHER_TEXT = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff\x85\u2028\u2029"
    ),
    min_size=1,
    max_size=30,
).filter(lambda s: "${" not in s)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@example(key=("slurm", "partition"), value="gpu,debug")
@example(key=("slurm", "time"), value="1-00")
@example(key=("slurm", "gpus_per_node"), value="h100:4")
@example(key=("slurm", "extra_args"), value="--constraint=a100&ib|h100")
@example(key=("skypilot", "accelerators"), value="L4")
@example(key=("kubernetes", "image"), value="registry.local:5000/ml/train@sha256:" + "a" * 64)
@example(key=("kubernetes", "namespace"), value="ml-team")
@example(key=("slurm", "partition"), value="gpu\n#SBATCH --nodes=99")
@example(key=("slurm", "extra_args"), value="--x=1 --nodes=99")
@example(key=("kubernetes", "image"), value='x"\nkind: Pod')
@example(key=("kubernetes", "namespace"), value="ml\n  name: x")
@example(key=("skypilot", "accelerators"), value="A100:8\nrun: id")
@given(
    key=st.sampled_from(
        [
            ("slurm", "partition"),
            ("slurm", "account"),
            ("slurm", "time"),
            ("slurm", "gpus_per_node"),
            ("slurm", "extra_args"),
            ("skypilot", "accelerators"),
            ("kubernetes", "image"),
            ("kubernetes", "namespace"),
        ]
    ),
    value=LAUNCHER_TEXT,
)
def test_any_launcher_text_is_refused_or_written_as_itself(
    tmp_path: Path, key: tuple[str, str], value: str
) -> None:
    """No text escapes its #SBATCH line or its YAML scalar; what cannot be written is a
    diagnostic (exit 2), never a traceback."""
    engine, field = key
    settings_ = {"image": "img"} if engine == "kubernetes" else {}
    settings_[field] = [value] if field == "extra_args" else value
    config = {
        "components": [
            {"id": "t", "type": "model-trainer", "model": "m", "distributed": {engine: settings_}}
        ]
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, default_style='"'))
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(["build", str(path), "-o", str(tmp_path / "out"), "--force"])
    assert code in (0, 2), err.getvalue()
    assert "Traceback" not in err.getvalue()
    if code == 2:
        assert re.search(r"c\.yaml:\d+:\d+: error: ", err.getvalue()), err.getvalue()
        return
    bundle = tmp_path / "out" / "t"
    if engine == "slurm":
        option = {"partition": "--partition=", "account": "--account=", "time": "--time="}.get(
            field, "--gpus-per-node=" if field == "gpus_per_node" else ""
        )
        lines = [
            line[len("#SBATCH ") :]
            for line in (bundle / "slurm.sbatch").read_text().splitlines()
            if line.startswith("#SBATCH ")
        ]
        assert option + value in lines
        assert sum(line.startswith("--nodes=") for line in lines) == 1
    elif engine == "skypilot":
        task = yaml.safe_load((bundle / "skypilot.yaml").read_text())
        assert task["resources"]["accelerators"] == value
        assert set(task) == {"name", "num_nodes", "resources", "workdir", "envs", "setup", "run"}
    else:
        manifest = yaml.safe_load((bundle / "kubernetes.yaml").read_text())
        found = manifest["spec"]["trainer"]["image"] if field == "image" else None
        found = manifest["metadata"].get("namespace") if field == "namespace" else found
        assert found == value
        assert manifest["kind"] == "TrainJob"
