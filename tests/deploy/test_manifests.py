"""The deployment files agree with the code: one image, real roles, probes on listening ports, settings that exist."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from scout.config import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
DASHBOARD = ROOT / "ops" / "grafana-dashboard.json"

ROLES = {"run", "leader", "worker", "api"}
FLOWER = ["celery", "-A", "dealscout.tasks", "flower", "--port=5555"]
FLOWER_PORT = 5555
HEALTH = "/health"
DETAILED = "/api/v1/monitoring/health/detailed"
OPS_METRICS = "/api/v1/monitoring/metrics"
WORKER_METRICS = "/metrics"
WORKER_PING = "celery -A dealscout.tasks inspect ping -d celery@$HOSTNAME"
# The runbook's names: `kubectl scale deployment celery-worker`, `kubectl logs -l app=deal-scout-api`, ...
DEPLOYMENT_ROLES = {"deal-scout-api": "api", "deal-scout-leader": "leader", "celery-worker": "worker"}
RUNBOOK_WORKER_REPLICAS = 6

ENVS = {setting.env: setting for setting in SETTINGS.values()}
SECRET_ENVS = {setting.env for setting in SETTINGS.values() if setting.secret}


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed: the manifests cannot be parsed")
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def load_yaml(path: Path) -> dict[str, Any]:
    (document,) = load_yaml_documents(path)
    return document


def role_of(command: list[str]) -> str:
    """The role a container command runs: a dealscout role, or flower."""
    if command == FLOWER:
        return "flower"
    assert len(command) >= 2 and command[0] == "dealscout" and command[1] in ROLES, command
    return command[1]


# ---------------------------------------------------------------- Dockerfile


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined and comments dropped."""
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(args))
    return env


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def included_packages() -> set[str]:
    patterns = pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    return {path.name for path in ROOT.iterdir()
            if (path / "__init__.py").is_file() and any(fnmatch.fnmatch(path.name, p) for p in patterns)}


def test_the_image_installs_dependencies_before_copying_the_source() -> None:
    steps = dockerfile_instructions()
    assert steps[0] == ("FROM", "python:3.11-slim")
    copies = [(i, args.split()[0]) for i, (ins, args) in enumerate(steps) if ins == "COPY"]
    installs = [i for i, (ins, args) in enumerate(steps) if ins == "RUN" and "pip install" in args]
    deps = next(i for i in installs if "pyproject.toml" in steps[i][1] and "--no-deps" not in steps[i][1])
    project = next(i for i in installs if "--no-deps" in steps[i][1])
    assert [source for i, source in copies if i < deps] == ["pyproject.toml"], "only pyproject.toml before the deps"
    packages = {source.rstrip("/") for i, source in copies if deps < i < project}
    assert included_packages() <= packages, sorted(included_packages() - packages)
    # pyproject's readme must be there to build the project's metadata.
    assert "README.md" in packages


def test_the_image_installs_the_extras_pyproject_declares() -> None:
    steps = dockerfile_instructions()
    arg = next(args for ins, args in steps if ins == "ARG" and args.startswith("EXTRAS="))
    extras = shlex.split(arg.split("=", 1)[1])
    assert "flower" in extras
    project = pyproject()["project"]
    if not any(dep.lower().startswith("celery") for dep in project["dependencies"]):
        pytest.skip("pyproject.toml does not depend on Celery yet, so it has no flower extra to check")
    assert set(extras) <= set(project.get("optional-dependencies", {})), extras


def test_the_image_checks_health_as_an_unprivileged_user_and_runs_the_service_by_default() -> None:
    steps = dict(dockerfile_instructions())
    assert HEALTH in steps["HEALTHCHECK"] and "urllib.request" in steps["HEALTHCHECK"]
    assert "OPS_HTTP_PORT" in steps["HEALTHCHECK"]
    assert steps["USER"] not in ("root", "0")
    assert steps["CMD"] == '["dealscout", "run"]'


def test_the_image_sets_only_real_settings_and_listens_beyond_loopback() -> None:
    env = dockerfile_env()
    settings = {name for name in env if not name.startswith(("PYTHON", "PIP_"))}
    assert settings <= ENVS.keys(), sorted(settings - ENVS.keys())
    assert env["OPS_HTTP_HOST"] == "0.0.0.0"


def test_the_build_context_keeps_what_the_image_copies() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for name in [*included_packages(), "pyproject.toml", "README.md"]:
        assert not any(fnmatch.fnmatch(name, pattern) for pattern in ignored), name


# ---------------------------------------------------------------- Kubernetes


def k8s_documents() -> list[dict[str, Any]]:
    return [doc for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
            for doc in load_yaml_documents(path)]


def k8s(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in k8s_documents() if doc["kind"] == kind}


def pod_containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(deployment name, pod template, container) for every container of every Deployment."""
    for name, deployment in k8s("Deployment").items():
        template = deployment["spec"]["template"]
        for container in template["spec"]["containers"]:
            yield name, template, container


def container_env(container: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    """Each variable the container gets: (where from: configmap, secret or value, its value when known)."""
    configmaps, secrets = k8s("ConfigMap"), k8s("Secret")
    env: dict[str, tuple[str, str | None]] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            data = configmaps[source["configMapRef"]["name"]].get("data", {})
            env.update({key: ("configmap", value) for key, value in data.items()})
        else:
            secret = secrets[source["secretRef"]["name"]]
            env.update({key: ("secret", None) for key in {**secret.get("data", {}), **secret.get("stringData", {})}})
    for item in container.get("env", []):
        ref = item.get("valueFrom", {})
        if "secretKeyRef" in ref:
            env[item["name"]] = ("secret", None)
        elif "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            env[item["name"]] = ("configmap", configmaps[key["name"]]["data"][key["key"]])
        else:
            env[item["name"]] = ("value", str(item.get("value", "")))
    return env


def setting_value(container: dict[str, Any], name: str) -> str:
    """What the process reads for a setting: the manifest's value, else the image's ENV, else the default."""
    known = container_env(container).get(name)
    if known and known[1] is not None:
        return known[1]
    return dockerfile_env().get(name, ENVS[name].default)


def probe_port(container: dict[str, Any], probe: dict[str, Any]) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


def test_the_kustomization_applies_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    manifests = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    assert "namespace" not in kustomization, "the runbook's kubectl commands name no namespace"


def test_the_deployments_carry_the_runbook_names_labels_and_roles() -> None:
    deployments = k8s("Deployment")
    assert DEPLOYMENT_ROLES.keys() <= deployments.keys()
    for name, deployment in deployments.items():
        app = {"app": name}
        assert deployment["spec"]["selector"]["matchLabels"] == app, name
        assert deployment["spec"]["template"]["metadata"]["labels"] == app, name
    for name, role in DEPLOYMENT_ROLES.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert role_of(container["command"]) == role, name
    assert deployments["deal-scout-leader"]["spec"]["replicas"] == 2


def test_one_image_runs_every_role() -> None:
    images = {container["image"] for _, _, container in pod_containers()}
    assert len(images) == 1, images
    for name, _, container in pod_containers():
        role_of(container["command"])
        assert "args" not in container, name


def test_probes_ask_the_runbook_endpoints_on_ports_the_container_listens_on() -> None:
    for name, template, container in pod_containers():
        role = role_of(container["command"])
        liveness, readiness = container["livenessProbe"], container["readinessProbe"]
        annotations = template["metadata"]["annotations"]
        if role in ("api", "leader", "run"):
            ops_port = int(setting_value(container, "OPS_HTTP_PORT"))
            assert liveness["httpGet"]["path"] == HEALTH, name
            assert readiness["httpGet"]["path"] == DETAILED, name
            assert probe_port(container, liveness) == probe_port(container, readiness) == ops_port, name
            assert setting_value(container, "OPS_HTTP_HOST") == "0.0.0.0", name
            assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (str(ops_port), OPS_METRICS)
        elif role == "worker":
            metrics_port = int(setting_value(container, "WORKER_METRICS_PORT"))
            assert (liveness["httpGet"]["path"], probe_port(container, liveness)) == (WORKER_METRICS, metrics_port)
            assert WORKER_PING in " ".join(readiness["exec"]["command"]), name
            assert annotations["prometheus.io/port"] == str(metrics_port)
            assert annotations["prometheus.io/path"] == WORKER_METRICS
        else:
            assert probe_port(container, liveness) == probe_port(container, readiness) == FLOWER_PORT, name
        assert annotations["prometheus.io/scrape"] == "true", name


def test_containers_get_only_real_settings_and_secrets_only_from_the_secret() -> None:
    for name, _, container in pod_containers():
        env = container_env(container)
        assert env.keys() <= ENVS.keys(), (name, sorted(env.keys() - ENVS.keys()))
        for variable, (source, value) in env.items():
            if variable in SECRET_ENVS:
                assert source == "secret", (name, variable, source)
            elif value is not None:
                ENVS[variable].parse(value)  # a value the service would refuse at start fails here
    for configmap in k8s("ConfigMap").values():
        assert not configmap["data"].keys() & SECRET_ENVS, sorted(configmap["data"].keys() & SECRET_ENVS)


def test_secret_placeholders_hold_no_real_credentials() -> None:
    for secret in k8s("Secret").values():
        assert "data" not in secret, "placeholders stay readable in stringData"
        for key, value in secret["stringData"].items():
            password = urlsplit(value).password if "://" in value else None
            assert value == "" or password == "CHANGE-ME", key


def test_every_container_requests_and_limits_cpu_and_memory() -> None:
    for name, _, container in pod_containers():
        resources = container["resources"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources[bound].keys(), (name, bound)


def test_the_autoscaler_owns_the_workers_and_lets_the_runbook_scale_them() -> None:
    (hpa,) = k8s("HorizontalPodAutoscaler").values()
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "celery-worker")
    assert hpa["spec"]["minReplicas"] <= RUNBOOK_WORKER_REPLICAS <= hpa["spec"]["maxReplicas"]
    # A replica count in the Deployment would be put back by every apply, undoing the HPA and `kubectl scale`.
    assert "replicas" not in k8s("Deployment")["celery-worker"]["spec"]


def test_services_reach_the_api_and_every_leader_on_the_ops_port() -> None:
    services = k8s("Service")
    deployments = k8s("Deployment")
    for service_name, deployment_name in (("deal-scout-api", "deal-scout-api"),
                                          ("deal-scout-leader-metrics", "deal-scout-leader")):
        service = services[service_name]
        assert service["spec"]["selector"] == {"app": deployment_name}
        (container,) = deployments[deployment_name]["spec"]["template"]["spec"]["containers"]
        (port,) = service["spec"]["ports"]
        assert probe_port(container, {"httpGet": {"port": port["targetPort"]}}) == int(
            setting_value(container, "OPS_HTTP_PORT"))
    assert services["deal-scout-leader-metrics"]["spec"]["clusterIP"] == "None", "one address per leader"


# ---------------------------------------------------------------- Docker Compose


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def dealscout_services() -> dict[str, dict[str, Any]]:
    """The services that run the Deal Scout image, whatever their role."""
    services = compose()["services"]
    return {name: service for name, service in services.items() if "build" in service}


def replicas(service: dict[str, Any]) -> int:
    return int(service.get("deploy", {}).get("replicas", 1))


def compose_setting(service: dict[str, Any], name: str) -> str:
    value = service.get("environment", {}).get(name)
    return str(value) if value is not None else dockerfile_env().get(name, ENVS[name].default)


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def test_compose_runs_the_production_shape() -> None:
    services = dealscout_services()
    count: dict[str, int] = {}
    for service in services.values():
        role = role_of(service["command"])
        count[role] = count.get(role, 0) + replicas(service)
    assert count == {"leader": 2, "worker": 3, "api": 1, "flower": 1}, count
    assert len({service["image"] for service in services.values()}) == 1
    assert {"postgres", "redis", "prometheus", "grafana"} <= compose()["services"].keys()


def test_compose_starts_each_service_after_the_ones_it_needs_are_healthy() -> None:
    services = compose()["services"]
    for name, service in services.items():
        assert "healthcheck" in service, name
        for needed, condition in service.get("depends_on", {}).items():
            assert condition["condition"] == "service_healthy", (name, needed)
            assert "healthcheck" in services[needed], needed
    for name, service in dealscout_services().items():
        assert "redis" in service["depends_on"], name
        if role_of(service["command"]) != "flower":
            assert "postgres" in service["depends_on"], name


def test_compose_healthchecks_ask_the_ports_each_process_listens_on() -> None:
    for name, service in dealscout_services().items():
        role, check = role_of(service["command"]), healthcheck_text(service)
        if role in ("api", "leader", "run"):
            port = compose_setting(service, "OPS_HTTP_PORT")
            assert f"http://127.0.0.1:{port}{HEALTH}" in check, name
            assert compose_setting(service, "OPS_HTTP_HOST") == "0.0.0.0", name
        elif role == "worker":
            assert WORKER_PING.replace("$", "$$") in check, name
        else:
            assert f"http://127.0.0.1:{FLOWER_PORT}/healthcheck" in check, name


def test_compose_passes_only_real_settings_and_never_a_literal_secret() -> None:
    for name, service in dealscout_services().items():
        environment = {key: str(value) for key, value in service["environment"].items()}
        assert environment.keys() <= ENVS.keys(), (name, sorted(environment.keys() - ENVS.keys()))
        for variable, value in environment.items():
            if variable in SECRET_ENVS:
                assert "${" in value or urlsplit(value).password is None, (name, variable)
            elif "${" not in value:
                ENVS[variable].parse(value)


def strings(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif isinstance(node, str):
        yield node


def test_the_env_example_documents_every_value_compose_reads_from_it() -> None:
    used = {name for text in strings(compose()) for name in re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text)}
    documented = {line.split("=", 1)[0] for line in (DEPLOY / ".env.example").read_text().splitlines()
                  if line and not line.startswith("#")}
    assert used == documented, (sorted(used - documented), sorted(documented - used))
    assert (documented - ENVS.keys()) <= {"POSTGRES_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD"}


def scrape_jobs() -> list[dict[str, Any]]:
    return load_yaml(DEPLOY / "prometheus.yml")["scrape_configs"]


def test_prometheus_scrapes_every_process_of_every_role() -> None:
    for name, service in dealscout_services().items():
        role = role_of(service["command"])
        if role == "flower":
            continue
        port = int(compose_setting(service, "WORKER_METRICS_PORT" if role == "worker" else "OPS_HTTP_PORT"))
        path = WORKER_METRICS if role == "worker" else OPS_METRICS
        # DNS discovery lists every replica of the service (and those `--scale` adds); a static target would reach
        # one of them at a time.
        found = [job for job in scrape_jobs() if job.get("metrics_path") == path
                 for sd in job.get("dns_sd_configs", [])
                 if name in sd["names"] and sd["type"] == "A" and sd["port"] == port]
        assert found, (name, port, path)


def test_prometheus_loads_the_shipped_alert_rules() -> None:
    prometheus = compose()["services"]["prometheus"]
    mounts = dict(volume.split(":")[:2] for volume in prometheus["volumes"])
    rules = mounts["../ops/prometheus-rules.yml"]
    patterns = load_yaml(DEPLOY / "prometheus.yml")["rule_files"]
    assert any(fnmatch.fnmatch(rules, pattern) for pattern in patterns), (rules, patterns)
    config = mounts["./prometheus.yml"]
    assert f"--config.file={config}" in prometheus["command"]


def test_grafana_is_provisioned_with_the_shipped_dashboard_and_prometheus() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {}
    for volume in grafana["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            assert (DEPLOY / source).exists(), source
            mounts[(DEPLOY / source).resolve()] = target
    dashboard_path = mounts[DASHBOARD.resolve()]
    provisioning = next(source for source, target in mounts.items() if target == "/etc/grafana/provisioning")
    providers = [provider for path in (provisioning / "dashboards").glob("*.yml")
                 for provider in load_yaml(path)["providers"]]
    assert any(Path(dashboard_path).parent == Path(p["options"]["path"]) for p in providers), dashboard_path
    sources = [source for path in (provisioning / "datasources").glob("*.yml")
               for source in load_yaml(path)["datasources"]]
    (prometheus,) = [source for source in sources if source["type"] == "prometheus"]
    url = urlsplit(prometheus["url"])
    assert url.hostname in compose()["services"] and url.port == 9090


# ---------------------------------------------------------------- Grafana dashboard


def test_the_dashboard_has_a_celery_row_with_the_runbook_thresholds() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids are unique"
    rows = [i for i, panel in enumerate(panels) if panel["type"] == "row"]
    (start,) = [i for i in rows if panels[i]["title"] == "Celery"]
    end = min([i for i in rows if i > start], default=len(panels))
    celery = {" ".join(t["expr"] for t in panel["targets"]): panel for panel in panels[start + 1:end]}
    exprs = " | ".join(celery)
    for metric in ('dealscout_celery_queue_depth{queue="celery"}', "dealscout_celery_workers_alive",
                   'dealscout_task_runs_total{task="run_search_task"}', "dealscout_task_duration_seconds_bucket"):
        assert metric in exprs, metric
    assert "by (status)" in exprs and "histogram_quantile(0.95" in exprs
    (queue,) = [panel for expr, panel in celery.items() if "dealscout_celery_queue_depth" in expr]
    steps = queue["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [step["value"] for step in steps] == [None, 1000, 5000]


def test_dashboard_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        grid = panel["gridPos"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & taken, panel["title"]
        taken |= cells
