"""The production recipes under deploy/ are loaded by the real components they configure.

- deploy/dagster.yaml becomes a DagsterInstance on the test PostgreSQL server with S3
  compute logs on the local S3 API, and a real shard run goes through it;
- deploy/ecs/dagster.yaml becomes an instance whose run launcher is dagster-aws' EcsRunLauncher;
- deploy/k8s/values.yaml's run launcher section, as the Helm chart renders it, is
  dagster-k8s' K8sRunLauncher config, and the GPU tag of deploy/k8s/gpu-step-tags.yaml
  turns into a Kubernetes Job with a GPU limit and node selector;
- deploy/Dockerfile's command serves the definitions over gRPC, reached through
  deploy/workspace.yaml.
What is not run here: docker build, helm template, a Kubernetes cluster, ECS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus
from dagster._core.storage.dagster_run import DagsterRun

from openvid_assets.assets.shards import register_partitions, store_new_shards
from openvid_assets.definitions import GLOBAL_JOB, SHARD_JOB, build_definitions
from openvid_assets.recipe import Recipe
from openvid_assets import samples
from openvid_assets_testing.ports import free_port
from openvid_assets_testing.s3server import upload_tree

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _instance_from(yaml_path: Path, home: Path) -> DagsterInstance:
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(yaml_path, home / "dagster.yaml")
    return DagsterInstance.from_config(str(home))


@pytest.fixture
def deploy_env(pg_database, s3_bucket, s3_env, monkeypatch) -> dict[str, str]:
    """The variables deploy/dagster.yaml reads, pointing at the test Postgres server and S3 API."""
    env = {**pg_database.env(), "DAGSTER_COMPUTE_LOGS_BUCKET": s3_bucket, "DAGSTER_COMPUTE_LOGS_PREFIX": "dagster-logs"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_deploy_dagster_yaml_is_a_working_postgres_s3_instance(deploy_env, s3_bucket, tmp_path, record_property):
    with _instance_from(DEPLOY / "dagster.yaml", tmp_path / "home") as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled and instance.run_retries_enabled
        assert instance.run_retries_max_retries == 2 and not instance.run_retries_retry_on_asset_or_op_failure
        assert not instance.telemetry_enabled
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 16
        limits = {limit["key"]: limit for limit in concurrency.run_queue_config.tag_concurrency_limits}
        assert limits["openvid/gpu"]["limit"] == 4 and limits["dagster/backfill"]["value"] == {
            "applyLimitPerUniqueValue": True
        }
        assert concurrency.pool_config.default_pool_limit == 4
        assert concurrency.pool_config.pool_granularity.value == "op"

        # A real shard run through this instance: source and data root in S3, the model
        # step in the "gpu" pool, the run and its events in Postgres, its logs in S3.
        src = tmp_path / "src"
        samples.smooth_pan(src, "a.mp4", num_frames=24)
        samples.static(src, "b.mp4", num_frames=24)
        upload_tree(src, s3_bucket, "raw")
        defs = build_definitions(f"s3://{s3_bucket}/curated")
        store = defs.resources["store"]
        store.recipes().save(Recipe().updated({"models": {"profile": "offline", "motion_backend": "farneback"}}))
        _, keys = store_new_shards(store.tables(), f"s3://{s3_bucket}/raw", 2, store.s3_client())
        assert register_partitions(instance, keys) == keys == ["shard-00000"]
        started = time.perf_counter()
        result = defs.resolve_job_def(SHARD_JOB).execute_in_process(
            instance=instance,
            partition_key=keys[0],
            asset_selection=[AssetKey("video_manifest"), AssetKey("motion_scores")],
        )
        record_property("deploy instance: manifest + motion run (s)", round(time.perf_counter() - started, 2))
        assert result.success
        assert instance.get_run_by_id(result.run_id).status == DagsterRunStatus.SUCCESS
        assert instance.get_materialized_partitions(AssetKey("motion_scores")) == {keys[0]}
        assert store.tables().read("motion_scores", keys[0]).height == 2

        info = instance.event_log_storage.get_concurrency_info("gpu")
        assert info.slot_count == 4 and info.active_slot_count == 0  # default limit applied, slot given back

        logs = boto3.client("s3").list_objects_v2(Bucket=s3_bucket, Prefix="dagster-logs/")
        assert any(result.run_id in obj["Key"] for obj in logs.get("Contents", [])), logs.get("Contents")


def test_ecs_dagster_yaml_loads_with_the_ecs_run_launcher(deploy_env, tmp_path, monkeypatch):
    for key, value in {
        "DAGSTER_ECS_CLUSTER": "openvid",
        "DAGSTER_ECS_LOG_GROUP": "/openvid/runs",
        "DAGSTER_ECS_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/openvid-exec",
        "DAGSTER_ECS_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/openvid-task",
    }.items():
        monkeypatch.setenv(key, value)
    with _instance_from(DEPLOY / "ecs" / "dagster.yaml", tmp_path / "home") as instance:
        launcher = instance.run_launcher
        assert type(launcher).__name__ == "EcsRunLauncher" and type(launcher).__module__.startswith("dagster_aws.ecs")
        assert launcher.run_task_kwargs["cluster"] == "openvid"
        assert launcher.run_task_kwargs["capacityProviderStrategy"][0]["capacityProvider"] == "openvid-gpu"
        assert launcher.task_role_arn.endswith("role/openvid-task") and launcher.container_name == "run"
        assert {"OPENVID_DATA_ROOT", "DAGSTER_PG_HOST"} <= set(launcher.env_vars)
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"

    # Everything but the run launcher is deploy/dagster.yaml's, so the two cannot drift apart.
    ecs = _load(DEPLOY / "ecs" / "dagster.yaml")
    assert ecs.pop("run_launcher")["class"] == "EcsRunLauncher"
    assert ecs == _load(DEPLOY / "dagster.yaml")


def _chart_run_launcher_config(values: dict, kubeconfig: Path) -> dict:
    """What the Helm chart renders into dagster.yaml's run_launcher.config from values.yaml."""
    k8s = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s = {re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower(): value for key, value in k8s["runK8sConfig"].items()}
    return {
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": "openvid-dagster-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
        "service_account_name": "openvid-dagster",
        "job_namespace": "openvid",
        "image_pull_policy": k8s["imagePullPolicy"],
        "env_config_maps": ["openvid-dagster-pipeline-env", *[c["name"] for c in k8s["envConfigMaps"]]],
        "env_secrets": [s["name"] for s in k8s["envSecrets"]],
        "env_vars": k8s["envVars"],
        "volume_mounts": k8s["volumeMounts"],
        "volumes": k8s["volumes"],
        "labels": k8s["labels"],
        "fail_pod_on_run_failure": k8s["failPodOnRunFailure"],
        "resources": k8s["resources"],
        "run_k8s_config": run_k8s,
        # Outside a cluster: a kubeconfig instead of the pod's service account (no API call is made).
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
    }


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: test, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: test, user: {token: test}}]
contexts: [{name: test, context: {cluster: test, user: test}}]
current-context: test
"""


def test_k8s_values_give_a_valid_k8s_run_launcher_and_gpu_jobs(tmp_path):
    from dagster._serdes import ConfigurableClassData
    from dagster_k8s import K8sRunLauncher
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import construct_dagster_k8s_job

    values = _load(DEPLOY / "k8s" / "values.yaml")
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["computeLogManager"]["type"] == "S3ComputeLogManager"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"
    code = values["dagster-user-deployments"]["deployments"][0]
    assert code["dagsterApiGrpcArgs"][:2] == ["--module-name", "openvid_assets.definitions"] and code["port"] == 4000
    concurrency = values["concurrency"]
    deploy = _load(DEPLOY / "dagster.yaml")["concurrency"]  # the same limits as the plain deployment
    assert concurrency["runs"]["maxConcurrentRuns"] == deploy["runs"]["max_concurrent_runs"]
    assert concurrency["runs"]["tagConcurrencyLimits"] == deploy["runs"]["tag_concurrency_limits"]
    assert concurrency["pools"]["defaultLimit"] == deploy["pools"]["default_limit"]

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    config = _chart_run_launcher_config(values, kubeconfig)
    # Validated against K8sRunLauncher's config schema and constructed, as an instance does.
    launcher = ConfigurableClassData("dagster_k8s", "K8sRunLauncher", yaml.safe_dump(config)).rehydrate(K8sRunLauncher)
    with pytest.raises(Exception, match="run_k8s_config|not_a_field|Received unexpected config entry"):
        bad = {**config, "run_k8s_config": {**config["run_k8s_config"], "not_a_field": {}}}
        ConfigurableClassData("dagster_k8s", "K8sRunLauncher", yaml.safe_dump(bad)).rehydrate(K8sRunLauncher)

    gpu = _load(DEPLOY / "k8s" / "gpu-step-tags.yaml")

    def job_for(tags: dict):
        run = DagsterRun(job_name=SHARD_JOB, run_id="0123456789abcdef", tags=tags)
        context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=True)
        job_config = context.get_k8s_job_config("registry.example.com/openvid-assets:test", launcher)
        return construct_dagster_k8s_job(
            job_config,
            ["dagster", "api", "execute_run"],
            "dagster-run-0123456789",
            user_defined_k8s_config=context.run_k8s_config,
            component="run_worker",
        )

    cpu_job = job_for({})
    pod = cpu_job.spec.template.spec
    assert pod.node_selector == {"openvid/pool": "cpu"}
    assert "nvidia.com/gpu" not in (pod.containers[0].resources.limits or {})
    assert cpu_job.spec.ttl_seconds_after_finished == 86400 and cpu_job.spec.backoff_limit == 0
    assert any(e.secret_ref and e.secret_ref.name == "openvid-aws" for e in pod.containers[0].env_from)

    gpu_job = job_for({"dagster-k8s/config": json.dumps(gpu)})  # the same dict as an op tag per step
    pod = gpu_job.spec.template.spec
    assert pod.node_selector == {"openvid/pool": "gpu"}
    assert pod.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    assert [t.key for t in pod.tolerations] == ["nvidia.com/gpu"]


def test_dockerfile_command_serves_the_definitions_to_the_deploy_workspace(tmp_path, monkeypatch):
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget
    from dagster._grpc.client import DagsterGrpcClient

    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", text, re.M) and "apt-get install" in text and "ffmpeg" in text
    cmd = json.loads(re.search(r"^CMD (\[.*?\])\s*$", text.replace("\\\n", ""), re.M | re.S).group(1))
    assert cmd[:3] == ["dagster", "code-server", "start"] and "openvid_assets.definitions" in cmd
    port = free_port()
    cmd[cmd.index("--port") + 1] = str(port)
    cmd[cmd.index("--host") + 1] = "127.0.0.1"
    dagster = str(Path(sys.executable).parent / "dagster")
    server = subprocess.Popen(
        [dagster, *cmd[1:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
    )
    try:
        client, deadline = DagsterGrpcClient(port=port, host="127.0.0.1"), time.monotonic() + 120
        while True:
            try:
                client.ping("up")
                break
            except Exception:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "code server did not start"
                time.sleep(0.5)
        # The webserver's and daemon's view: deploy/workspace.yaml, the host from the environment.
        workspace = _load(DEPLOY / "workspace.yaml")
        workspace["load_from"][0]["grpc_server"]["port"] = port
        (tmp_path / "workspace.yaml").write_text(yaml.safe_dump(workspace))
        monkeypatch.setenv("OPENVID_CODE_HOST", "127.0.0.1")
        (tmp_path / "ui_home").mkdir()
        with (
            DagsterInstance.from_config(str(tmp_path / "ui_home")) as instance,
            WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(tmp_path / "workspace.yaml")])) as context,
        ):
            request = context.create_request_context()
            assert request.get_code_location_error("openvid_assets") is None
            repo = next(iter(request.get_code_location("openvid_assets").get_repositories().values()))
            assert {SHARD_JOB, GLOBAL_JOB} <= {job.name for job in repo.get_all_jobs()}
            assert "new_videos_sensor" in {sensor.name for sensor in repo.get_sensors()}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # a loaded machine: its graceful shutdown is not what is tested here
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
