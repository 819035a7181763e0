"""docker-compose.yml validates against the Compose specification's schema (vendored by
check-jsonschema), and wires the stack as README's "Run the stack" says."""

import re
import subprocess

import pytest
import yaml

from tests.tools import ROOT, venv_tool

COMPOSE = ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def services():
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_compose_file_matches_the_compose_spec_schema():
    done = subprocess.run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_schema_check_catches_a_wrong_depends_on_condition(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("service_healthy", "service_up", 1))
    done = subprocess.run(
        [venv_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(broken)],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0


def test_services_wait_for_healthy_or_completed_dependencies(services):
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert spec["condition"] in {"service_healthy", "service_completed_successfully"}, name
            waits_for = services[dep]
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in waits_for, f"{name} waits on {dep}, which has none"
            else:
                assert waits_for.get("restart") == "no", f"{dep} is not a one-shot service"


def test_migrations_and_bucket_are_one_shot_services_every_worker_waits_for(services):
    assert services["migrate"]["command"] == ["synthgen", "db", "upgrade"]
    assert "s3.bucket.create" in services["s3-init"]["command"][0]
    for name in ("api", "worker-gpu", "worker-gpu-on-cpu", "worker-cpu", "worker-preview", "beat"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully", name
        assert deps["s3-init"]["condition"] == "service_completed_successfully", name


def test_the_gpu_worker_reserves_an_nvidia_gpu_and_the_cpu_profile_replaces_it(services):
    (device,) = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    assert services["worker-gpu-on-cpu"]["profiles"] == ["cpu"]
    assert "deploy" not in services["worker-gpu-on-cpu"]
    assert services["worker-gpu-on-cpu"].get("command") == services["worker-gpu"].get("command")


def test_secrets_come_from_the_env_file_not_the_compose_file():
    text = COMPOSE.read_text()
    for key in ("POSTGRES_PASSWORD", "S3_SECRET_KEY", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(rf"\$\{{{key}:\?", text), key
        assert f"{key}=" in (ROOT / ".env.example").read_text()


def test_stateful_services_keep_their_data_in_named_volumes(services):
    volumes = yaml.safe_load(COMPOSE.read_text())["volumes"]
    for name, path in (
        ("postgres", "/var/lib/postgresql/data"),
        ("seaweedfs", "/data"),
        ("prometheus", "/prometheus"),
        ("grafana", "/var/lib/grafana"),
    ):
        mounts = [m.split(":") for m in services[name]["volumes"]]
        assert any(src in volumes and dst == path for src, dst, *_ in mounts), name
