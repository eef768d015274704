"""The ops tree seen from outside: manifests rendered by kustomize and
validated offline against the Kubernetes schemas, the Prometheus
configuration and rules checked and unit-tested by promtool, the dashboard
checked against the Dashboard API's shape, and the local stack brought up
with every dashboard query and rule run against a real Prometheus.

Run with the rest of the tests: scripts/test.sh (or `pytest ops/tests`).
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
KUBERNETES_VERSION = "1.33.0"
OVERLAYS = ["base", "overlays/prometheus", "overlays/gmp", "overlays/chained", "loadtester"]
DASHBOARDS = sorted((OPS / "dashboards").glob("*.json"))
RULE_FILES = sorted((OPS / "prometheus" / "rules").glob("*.yml"))


def run(*args, cwd=ROOT, check=True):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


PODMONITORING_SCHEMA = json.loads((OPS / "k8s" / "schemas" / "podmonitoring-v1.schema.json").read_text())
DURATION_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}


def prometheus_seconds(duration):
    """A Prometheus duration (`1m30s`, `500ms`) in seconds."""
    return sum(int(n) * DURATION_UNITS[unit] for n, unit in re.findall(r"([0-9]+)(ms|[ywdhms])", duration))


def validate_podmonitoring(doc):
    """The schema, and the CRD's CEL rule it cannot express: an endpoint's
    timeout must not exceed its interval."""
    jsonschema.validate(doc, PODMONITORING_SCHEMA)
    for endpoint in doc["spec"]["endpoints"]:
        if "timeout" in endpoint and prometheus_seconds(endpoint["timeout"]) > prometheus_seconds(endpoint["interval"]):
            raise jsonschema.ValidationError(
                f"scrape timeout ({endpoint['timeout']}) must not be greater than scrape interval ({endpoint['interval']})")


def render(overlay):
    out = run("kubectl", "kustomize", str(OPS / "k8s" / overlay)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


# --- Kubernetes manifests -------------------------------------------------

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_validates(overlay, tmp_path):
    docs = render(overlay)
    builtin = [d for d in docs if d["apiVersion"] != "monitoring.googleapis.com/v1"]
    path = tmp_path / "builtin.yaml"
    path.write_text(yaml.safe_dump_all(builtin))
    result = run("kubernetes-validate", "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout + result.stderr

    for doc in docs:
        if doc["kind"] == "PodMonitoring":
            validate_podmonitoring(doc)


def test_validation_catches_mistakes(tmp_path):
    """The validators bite: a misspelt field and a wrong type fail."""
    docs = render("base")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(deployment))
    assert run("kubernetes-validate", "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(path), check=False).returncode != 0

    monitoring = next(d for d in render("overlays/gmp") if d["kind"] == "PodMonitoring")
    monitoring["spec"]["endpoints"][0]["interval"] = "thirty seconds"
    with pytest.raises(jsonschema.ValidationError):
        validate_podmonitoring(monitoring)
    monitoring["spec"]["endpoints"][0]["interval"] = "30s"
    monitoring["spec"]["targetLabels"]["fromPod"][0]["to"] = "namespace"
    with pytest.raises(jsonschema.ValidationError):
        validate_podmonitoring(monitoring)


def test_podmonitoring_schema_follows_the_published_crd():
    """What the CRD (v1) requires and allows, each with a case that bites."""
    base = next(d for d in render("overlays/gmp") if d["kind"] == "PodMonitoring")
    validate_podmonitoring(base)

    def variant(change):
        doc = json.loads(json.dumps(base))
        change(doc)
        return doc

    refused = {
        "an endpoint without interval": lambda d: d["spec"]["endpoints"][0].pop("interval"),
        "a timeout longer than the interval": lambda d: d["spec"]["endpoints"][0].update(timeout="1m"),
        "eleven endpoints": lambda d: d["spec"].update(endpoints=d["spec"]["endpoints"] * 11),
        "no endpoints": lambda d: d["spec"].update(endpoints=[]),
        "an unknown field": lambda d: d["spec"].update(filterRuning=True),
    }
    for what, change in refused.items():
        with pytest.raises(jsonschema.ValidationError):
            validate_podmonitoring(variant(change))
            pytest.fail(f"accepted {what}")
    accepted = {
        "filterRunning": lambda d: d["spec"].update(filterRunning=True),
        "a timeout within the interval": lambda d: d["spec"]["endpoints"][0].update(timeout="10s"),
        "ten endpoints": lambda d: d["spec"].update(endpoints=d["spec"]["endpoints"] * 10),
        "a status block": lambda d: d.update(status={
            "observedGeneration": 2,
            "conditions": [{"type": "ConfigurationCreateSuccess", "status": "True",
                            "lastUpdateTime": "2026-11-28T10:00:00Z"}],
            "endpointStatuses": [{"name": "PodMonitoring/default/flask-app/flask-metrics", "activeTargets": 2}],
        }),
    }
    for what, change in accepted.items():
        validate_podmonitoring(variant(change))


SKAFFOLD_SCHEMA = json.loads((OPS / "tests" / "skaffold-v4beta13.schema.json").read_text())


def test_skaffold_config_follows_the_published_schema():
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    assert config["apiVersion"] == "skaffold/v4beta13"
    jsonschema.Draft7Validator(SKAFFOLD_SCHEMA).validate(config)

    def variant(change):
        doc = json.loads(json.dumps(config))
        change(doc)
        return doc

    refused = {
        # v1's deploy.kustomize moved to manifests.kustomize in v4.
        "kustomize under deploy": lambda d: d["deploy"].update(kustomize={"paths": ["ops/k8s/base"]}),
        "an artifact without image": lambda d: d["build"]["artifacts"][0].pop("image"),
        "a profile without name": lambda d: d["profiles"][0].pop("name"),
        "a misspelt top-level key": lambda d: d.update(manifest=d.pop("manifests")),
        "two builders for one artifact": lambda d: d["build"]["artifacts"][0].update(bazel={"target": "//:x"}),
        "paths that are not a list": lambda d: d["manifests"]["kustomize"].update(paths="ops/k8s/base"),
    }
    for what, change in refused.items():
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(SKAFFOLD_SCHEMA).validate(variant(change))
            pytest.fail(f"accepted {what}")


def test_skaffold_builds_what_its_manifests_deploy():
    config = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    for artifact in artifacts.values():
        assert (ROOT / artifact.get("context", ".") / artifact["docker"]["dockerfile"]).is_file(), artifact
    profiles = {p["name"]: p for p in config["profiles"]}
    assert {"gmp", "prometheus"} <= profiles.keys()
    assert profiles["prometheus"]["manifests"]["kustomize"]["paths"] == ["ops/k8s/overlays/prometheus"]
    for name, manifests in [("default", config["manifests"])] + [(n, p["manifests"]) for n, p in profiles.items()]:
        images = set()
        for path in manifests["kustomize"]["paths"]:
            for doc in render(str(Path(path).relative_to("ops/k8s"))):
                for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                    images.add(container["image"].rsplit(":", 1)[0])
        ours = {image for image in images if image.startswith("gcr.io/PROJECT_ID/")}
        assert ours, name
        # Every image of ours that is deployed is built (skaffold puts the
        # built tag in its place).
        assert ours <= artifacts.keys(), (name, ours - artifacts.keys())


def test_chained_overlay_calls_the_second_deployment_only():
    """flask-app-tutorial's DOWNSTREAM_URL names a Service of the overlay
    that selects the second Deployment's pods on a port they serve, and the
    second instance exports spans under a name of its own."""
    docs = render("overlays/chained")
    by_kind = lambda kind: {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}
    deployments, services = by_kind("Deployment"), by_kind("Service")
    env = lambda name: {
        e["name"]: e.get("value") for e in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    url = urllib.parse.urlsplit(env("flask-app-tutorial")["DOWNSTREAM_URL"])
    assert url.scheme == "http" and url.path.startswith("/hello/")
    service = services[url.hostname]
    port = next(p for p in service["spec"]["ports"] if p["port"] == (url.port or 80))
    assert service["spec"]["type"] == "ClusterIP"
    downstream = next(
        d for d in deployments.values()
        if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    )
    assert downstream["metadata"]["name"] == "flask-app-downstream"
    container = downstream["spec"]["template"]["spec"]["containers"][0]
    assert port["targetPort"] in [p["name"] for p in container["ports"]]
    assert container["image"] == deployments["flask-app-tutorial"]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert env("flask-app-downstream")["OTEL_SERVICE_NAME"] != env("flask-app-tutorial")["OTEL_SERVICE_NAME"]
    assert "DOWNSTREAM_URL" not in env("flask-app-downstream")
    # The public Service still selects only the first Deployment's pods.
    public = services["flask-app-tutorial"]["spec"]["selector"]
    assert not public.items() <= downstream["spec"]["template"]["metadata"]["labels"].items()
    # Without the component, nothing calls out.
    assert all("DOWNSTREAM_URL" not in str(d) for d in render("overlays/gmp"))


def test_workloads_are_locked_down_and_metrics_ports_named():
    for overlay in OVERLAYS:
        for doc in render(overlay):
            if doc["kind"] not in ("Deployment", "Job"):
                continue
            pod = doc["spec"]["template"]["spec"]
            for container in pod["containers"]:
                for port in container.get("ports", []):
                    # The API server's rule (IANA service name), which the
                    # OpenAPI schemas do not carry.
                    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?", port["name"]), port
            assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["allowPrivilegeEscalation"] is False
                assert context["readOnlyRootFilesystem"] is True
                assert "memory" in container["resources"]["limits"]
    ports = {
        d["metadata"]["name"]: [p["name"] for c in d["spec"]["template"]["spec"]["containers"] for p in c["ports"]]
        for d in render("base")
        if d["kind"] == "Deployment"
    }
    assert "flask-metrics" in ports["flask-app-tutorial"]
    assert "custom-metrics" in ports["custom-metrics-example"]
    service = next(d for d in render("base") if d["kind"] == "Service")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0]["port"] == 80


def test_loadtester_job_shares_users_among_indexed_pods():
    job = next(d for d in render("loadtester") if d["kind"] == "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] > 1
    container = spec["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env["LOADTESTER_WORKERS"]) == spec["completions"]
    assert int(env["LOADTESTER_USERS"]) >= spec["completions"]
    assert [p["name"] for p in container["ports"]] == ["load-metrics"]


def test_prometheus_overlay_uses_rbac_v1_and_the_sidecar_settings_file():
    docs = render("overlays/prometheus")
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    assert ("rbac.authorization.k8s.io/v1", "ClusterRole") in kinds
    assert not any("v1beta1" in api for api, _ in kinds)
    prometheus = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "prometheus")
    sidecar = next(c for c in prometheus["spec"]["template"]["spec"]["containers"] if c["name"] == "stackdriver-prometheus-sidecar")
    settings = dict(
        line.split("=", 1)
        for line in (OPS / "k8s" / "overlays" / "prometheus" / "sidecar.env").read_text().split()
    )
    assert sidecar["image"].endswith(":" + settings["SIDECAR_IMAGE_TAG"])
    assert "--include={job=~\"kubernetes-pods\"}" in sidecar["args"]
    assert all(d["metadata"].get("namespace", settings["KUBE_NAMESPACE"]) == settings["KUBE_NAMESPACE"] for d in docs)
    config_map = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("prometheus-config"))
    assert config_map["data"]["prometheus.yml"] == (OPS / "prometheus" / "prometheus.yml").read_text()
    # The archived sidecar reads Prometheus' WAL and was never built for its
    # exemplar records: exemplar storage stays off in this overlay.
    server = next(c for c in prometheus["spec"]["template"]["spec"]["containers"] if c["name"] == "prometheus")
    assert not any("exemplar" in arg for arg in server.get("args", [])), server.get("args")


# --- Prometheus configuration and rules ---------------------------------------

def localized_config(directory, interval=None):
    config = directory / "prometheus.yml"
    args = [sys.executable, str(OPS / "prometheus" / "localize.py"), str(OPS / "prometheus" / "prometheus.yml"), str(config)]
    run(*args, *([interval] if interval else []))
    shutil.copytree(OPS / "prometheus" / "rules", directory / "rules", ignore=shutil.ignore_patterns("tests"))
    (directory / "targets").mkdir(exist_ok=True)
    return config


def test_config_checks_and_differs_only_in_discovery(tmp_path):
    config = localized_config(tmp_path)
    run("promtool", "check", "config", str(config))
    original = (OPS / "prometheus" / "prometheus.yml").read_text().splitlines()
    local = config.read_text().splitlines()
    removed = [line for line in original if line not in local]
    added = [line for line in local if line not in original]
    assert removed == ["    kubernetes_sd_configs:", "      - role: pod"], removed
    assert added[0] == "    file_sd_configs:", added


def test_rules_check_and_unit_tests_pass():
    run("promtool", "check", "rules", *map(str, RULE_FILES))
    tests = sorted((OPS / "prometheus" / "rules" / "tests").glob("*.yml"))
    assert tests
    out = run("promtool", "test", "rules", *map(str, tests)).stdout
    assert out.count("SUCCESS") == len(tests), out


# --- Dashboards -------------------------------------------------------------

def dashboard_queries():
    for path in DASHBOARDS:
        for tile in json.loads(path.read_text())["mosaicLayout"]["tiles"]:
            widget = tile["widget"]
            sets = widget["xyChart"]["dataSets"] if "xyChart" in widget else [widget["scorecard"]]
            for data_set in sets:
                yield widget["title"], data_set["timeSeriesQuery"]["prometheusQuery"]


def test_dashboards_are_well_formed():
    assert DASHBOARDS
    schema = json.loads((OPS / "tests" / "dashboard.schema.json").read_text())
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        jsonschema.validate(dashboard, schema)
        columns = dashboard["mosaicLayout"]["columns"]
        for tile in dashboard["mosaicLayout"]["tiles"]:
            assert tile["xPos"] + tile["width"] <= columns, tile["widget"]["title"]
    broken = json.loads(DASHBOARDS[0].read_text())
    broken["mosaicLayout"]["tiles"][0]["widget"]["scorecard"]["sparkChartView"]["sparkChartType"] = "SPARKLINE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


# --- The local stack, end to end ----------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base, promql):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def wait_until(what, timeout, probe):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except OSError as err:
            last = err
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}; last: {last}")


PROMQL_WORDS = {
    "sum", "by", "rate", "histogram_quantile", "max", "min", "avg", "and", "or", "unless",
    "increase", "absent", "without", "on", "ignoring", "group_left", "group_right", "count",
}


def metric_names(expr):
    """The metric names a PromQL expression selects: identifiers that are not
    keywords or functions, outside braces and brackets and strings."""
    stripped = re.sub(r'"[^"]*"', " ", expr)
    stripped = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", stripped)
    stripped = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", stripped)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", stripped))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"[0-9.e]+", n)}


@pytest.fixture(scope="module")
def local_stack():
    ports = {name: free_port() for name in ["APP_PORT", "FLASK_METRICS_PORT", "CUSTOM_METRICS_PORT", "PROMETHEUS_PORT",
                                            "DOWNSTREAM_PORT", "DOWNSTREAM_METRICS_PORT", "DASHBOARD_PORT"]}
    env = dict(os.environ, DEMO_SCRAPE_INTERVAL="1s", DEMO_DURATION="120", DEMO_BUILD_PROFILE="dev",
               CHAOS_TARGET_PERCENT="30", **{k: str(v) for k, v in ports.items()})
    log = tempfile.TemporaryFile(mode="w+")
    demo = subprocess.Popen([str(ROOT / "scripts" / "demo.sh")], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{ports['PROMETHEUS_PORT']}"

    def output():
        log.seek(0)
        return log.read()

    try:
        deadline = time.monotonic() + 600  # a first build of the binaries
        while "ready" not in output():
            assert demo.poll() is None, f"demo.sh exited {demo.returncode}:\n{output()}"
            assert time.monotonic() < deadline, output()
            time.sleep(0.5)
        yield base, ports, output
    finally:
        # SIGTERM, not SIGINT: a shell started in the background (as CI may
        # run this) ignores SIGINT and cannot trap it.
        os.killpg(demo.pid, signal.SIGTERM)
        try:
            demo.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        assert "everything it started is gone" in output(), output()


def test_local_stack_chains_two_instances_in_one_trace(local_stack):
    _, ports, _ = local_stack
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['APP_PORT']}/downstream", timeout=10) as response:
        assert response.status == 200
        assert response.read() == b"Hello upstream!"


def test_local_stack_links_duration_buckets_to_traces(local_stack):
    """The demo's Prometheus keeps exemplars, and their trace ids are those
    of spans the hello service wrote (its span file, stdout exporter)."""
    base, _, output = local_stack
    spans_file = re.search(r"(\S+/flask-app-rs\.spans)", output()).group(1)

    def exemplar_trace_ids():
        params = urllib.parse.urlencode({"query": "flask_http_request_duration_seconds_bucket",
                                         "start": "0", "end": str(time.time() + 60)})
        with urllib.request.urlopen(f"{base}/api/v1/query_exemplars?{params}", timeout=10) as response:
            data = json.load(response)["data"]
        return {e["labels"]["trace_id"] for series in data for e in series["exemplars"]}

    ids = wait_until("exemplars in the demo's Prometheus", 60, exemplar_trace_ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    spans = wait_until("spans written", 30, lambda: Path(spans_file).read_text())
    assert any(i in spans for i in ids), (ids, spans_file)


def test_local_stack_scrapes_both_services(local_stack):
    base, ports, _ = local_stack
    up = wait_until("both targets up", 60, lambda: len(query(base, 'up{job="kubernetes-pods"} == 1')) == 2)
    up = query(base, 'up{job="kubernetes-pods"} == 1')
    assert sorted(r["metric"]["app"] for r in up) == ["custom-metrics-example", "flask-app"]
    labels = up[0]["metric"]
    for label in ["kubernetes_namespace", "kubernetes_pod_name", "kubernetes_container_name", "kubernetes_pod_host_ip"]:
        assert label in labels, labels
    with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=10) as response:
        targets = json.load(response)["data"]
    # The application port is discovered but not named *-metrics: dropped.
    assert len(targets["droppedTargets"]) == 1


def chromium(*args, timeout=120):
    """Headless Chromium (Debian's package), as root needs it."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    assert binary, "chromium is needed: scripts/install-test-deps.sh installs it"
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--window-size=1400,2600", "--virtual-time-budget=30000", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_local_dashboard_draws_every_tile_in_a_browser(local_stack, capsys):
    base, ports, _ = local_stack
    # Data for every tile first (the same wait as the query test below).
    wait_until("traffic in Prometheus", 90,
               lambda: query(base, 'sum(rate(flask_http_request_total{status!~"2.."}[5m])) > 0'))
    wait_until("exemplars", 60, lambda: query(base, "flask_http_request_duration_seconds_count"))
    url = f"http://127.0.0.1:{ports['DASHBOARD_PORT']}/local/?prometheus={base}&minutes=5"
    dashboard = json.loads((OPS / "dashboards" / "flask-app-rs.json").read_text())
    titles = [t["widget"]["title"] for t in dashboard["mosaicLayout"]["tiles"]]

    # Retried until every tile has data: the first scrapes come in slowly.
    deadline, failure = time.monotonic() + 120, "not tried"
    while True:
        result = chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url)
        dom = result.stdout
        states = {title: state for state, title in re.findall(r'data-state="(\w+)"[^>]*data-title="([^"]*)"', dom)}
        not_ok = {t: states.get(t) for t in titles if states.get(t) != "ok"}
        if 'data-ready="true"' in dom and not not_ok:
            break
        failure = f"tiles without data: {not_ok}; browser: {result.stderr[-1500:]}"
        assert time.monotonic() < deadline, failure
        time.sleep(2)
    assert "data-errors" not in dom, dom
    console_errors = [line for line in result.stderr.splitlines()
                      if "CONSOLE" in line and ("Uncaught" in line or ":ERROR:" in line.upper() or "error" in line.lower())]
    assert not console_errors, console_errors
    # Exemplars on the latency chart: the chart says how many it drew.
    latency = re.search(r'data-state="ok"[^>]*data-title="Latency percentiles by path"[^>]*data-exemplars="(\d+)"'
                        r'|data-exemplars="(\d+)"[^>]*data-state="ok"[^>]*data-title="Latency percentiles by path"', dom)
    assert latency and int(latency.group(1) or latency.group(2)) > 0, "no exemplars on the latency chart"

    screenshot = ROOT / "target" / "dashboard-local.png"
    screenshot.parent.mkdir(exist_ok=True)
    shot = chromium(f"--screenshot={screenshot}", url)
    assert screenshot.exists() and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    with capsys.disabled():
        print(f"\nscreenshot of the local dashboard: {screenshot}")


def test_every_dashboard_query_and_rule_returns_data(local_stack):
    base, _, _ = local_stack
    # Rates over 5m windows need two samples of each series, and the chaos
    # statuses need some traffic: wait for the slowest, the error ratio.
    wait_until("traffic in Prometheus", 90, lambda: query(base, 'sum(rate(flask_http_request_total{status!~"2.."}[5m])) > 0'))

    for title, promql in dashboard_queries():
        result = wait_until(f"data for dashboard panel {title!r}: {promql}", 30, lambda: query(base, promql))
        assert result, (title, promql)

    with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=10) as response:
        groups = json.load(response)["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == sum(len(g["rules"]) for f in RULE_FILES for g in yaml.safe_load(f.read_text())["groups"])
    with urllib.request.urlopen(f"{base}/api/v1/label/__name__/values", timeout=10) as response:
        present = set(json.load(response)["data"])
    for rule in rules:
        assert rule["health"] == "ok", rule
        if rule["type"] == "recording":
            wait_until(f"data for recording rule {rule['name']}", 30, lambda: query(base, rule["name"]))
            present.add(rule["name"])
    for rule in rules:
        missing = metric_names(rule["query"]) - present
        if rule["name"] == "CustomMetricAbsent":
            assert missing == set(), rule["query"]
        assert not missing, f"{rule['name']} refers to {missing}, which nothing emits"
    for title, promql in dashboard_queries():
        assert not (metric_names(promql) - present), (title, promql)
