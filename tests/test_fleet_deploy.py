"""The fleet on Kubernetes (deploy/fleet, examples/fleet/instances/*/deploy): every instance has
an overlay that `kubectl kustomize` renders into objects the Kubernetes API schema accepts
(kubernetes-validate, strict), with mox and the reconciler in one pod sharing the config and data
volumes, the reconciler's command line accepted by the CLI for that instance; the Argo CD
ApplicationSet's git directory generator and the Flux Kustomizations, expanded here as those
controllers do, reach exactly those overlays."""

from __future__ import annotations

import os
import posixpath
import re
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from reconciler.desired.fleet import default_instance_name, find_instances
from reconciler.desired.load import load_desired

from .test_deploy import lint, linter, load_yaml, parse_cli

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "examples" / "fleet"
FLEET_DEPLOY = ROOT / "deploy" / "fleet"
NAMES = [i.name for i in find_instances(FLEET)]
CONFIG, DATA = "/mox/config", "/mox/data"


def kustomize(path: Path, tmp_path: Path) -> list[dict[str, Any]]:
    kubectl = linter("kubectl")
    out = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    (tmp_path / "rendered.yaml").write_text(out.stdout)
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return doc


def mounts(container: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    return {m["mountPath"]: (m["name"], bool(m.get("readOnly"))) for m in container["volumeMounts"]}


def test_every_instance_has_an_overlay() -> None:
    assert NAMES == ["mail-a", "mail-b", "mail-c"]
    for name in NAMES:
        kz = load_yaml(FLEET / "instances" / name / "deploy" / "kustomization.yaml")[0]
        assert kz["namespace"] == f"mox-{name}"


def test_yamllint_fleet_files() -> None:
    lint([linter("yamllint"), "--strict", "-c", str(ROOT / "deploy" / ".yamllint.yaml"), str(FLEET_DEPLOY),
          *map(str, FLEET.glob("**/deploy"))])


@pytest.mark.parametrize("name", NAMES)
def test_overlay_renders_mox_with_the_reconciler_as_sidecar(name: str, tmp_path: Path) -> None:
    docs = kustomize(FLEET / "instances" / name / "deploy", tmp_path)
    lint([linter("kubernetes-validate"), "--strict", "--no-warn", "-k", "1.30.0", str(tmp_path / "rendered.yaml")])
    ns = f"mox-{name}"
    assert one(docs, "Namespace")["metadata"]["name"] == ns
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {ns}

    cm = one(docs, "ConfigMap")
    env = dict(cm["data"])
    assert env["MOX_RECONCILER_SUBDIR"] == f"instances/{name}" and env["MOX_RECONCILER_INSTANCE"] == name
    assert default_instance_name(env["MOX_RECONCILER_SUBDIR"]) == name  # the label agrees with the default
    load_desired(FLEET / env["MOX_RECONCILER_SUBDIR"], FLEET)  # the overlay names a valid desired state

    sts = one(docs, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"mox", "mox-reconciler"}
    mox, rec = containers["mox"], containers["mox-reconciler"]
    # One pod, the same volumes: the reconciler writes where mox reads, and mox's control socket
    # (DataDir/ctl) is at the same path for both.
    claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    assert mounts(mox)[CONFIG] == ("config", False) and mounts(mox)[DATA] == ("data", False)
    assert mounts(rec)[CONFIG] == ("config", False) and mounts(rec)[DATA] == ("data", True)
    assert {"config", "data"} <= claims
    data_dir = next(ln.split(":", 1)[1].strip() for ln in (ROOT / "examples/mox/config/mox.conf").read_text().splitlines()
                    if ln.startswith("DataDir:"))
    assert posixpath.normpath(posixpath.join(CONFIG, data_dir)) == DATA  # mox.conf's DataDir: the socket's dir
    assert rec["securityContext"]["runAsUser"] == 1000 and rec["securityContext"]["readOnlyRootFilesystem"]
    assert rec["envFrom"] == [{"configMapRef": {"name": cm["metadata"]["name"]}}]
    assert re.fullmatch(r"registry\.example\.org/mox-reconciler@sha256:[0-9a-f]{64}", rec["image"])

    # The reconciler's command line, as the CLI reads it with the ConfigMap's variables.
    args = parse_cli(rec["args"], f"{name} mox-reconciler", env)
    assert args.command == "watch" and args.subdir == f"instances/{name}" and args.instance == name
    assert args.source == "https://git.example.org/mail/fleet.git"
    ports = {p["name"]: p["containerPort"] for p in rec["ports"]}
    assert int(args.receiver_addr.rpartition(":")[2]) == ports["hook"]
    assert int(args.metrics_addr.rpartition(":")[2]) == ports["metrics"]
    hook_dir = str(PurePosixPath(str(args.receiver_secret_file)).parent)
    assert mounts(rec)[hook_dir] == ("hook-secret", True)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["hook-secret"]["secret"]["secretName"] == "mox-reconciler-hook"
    assert rec["readinessProbe"]["httpGet"]["path"] == "/readyz" and rec["livenessProbe"]["httpGet"]["path"] == "/healthz"

    svc = one(docs, "Service", "mox-reconciler")
    assert {p["targetPort"] for p in svc["spec"]["ports"]} == {"metrics", "hook"}
    assert svc["spec"]["selector"] == sts["spec"]["selector"]["matchLabels"]


def go_template(text: str, params: dict[str, str]) -> str:
    """`{{.path.basename}}`-style fields, as the ApplicationSet controller fills them (goTemplate)."""

    def field(m: re.Match[str]) -> str:
        key = m.group(1)
        assert key in params, f"unknown template field .{key}"
        return params[key]

    return re.sub(r"\{\{\s*\.([\w.]+)\s*\}\}", field, text)


def fill(value: Any, params: dict[str, str]) -> Any:
    if isinstance(value, str):
        return go_template(value, params)
    if isinstance(value, dict):
        return {k: fill(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, params) for v in value]
    return value


def overlay_config(path: Path) -> dict[str, str]:
    kz = load_yaml(path / "kustomization.yaml")[0]
    (gen,) = kz["configMapGenerator"]
    return dict(lit.split("=", 1) for lit in gen["literals"])


def test_argocd_applicationset_stamps_one_application_per_instance() -> None:
    (appset,) = load_yaml(FLEET_DEPLOY / "argocd" / "applicationset.yaml")
    assert (appset["apiVersion"], appset["kind"]) == ("argoproj.io/v1alpha1", "ApplicationSet")
    spec = appset["spec"]
    assert spec["goTemplate"] is True and spec["goTemplateOptions"] == ["missingkey=error"]
    (gen,) = spec["generators"]
    git = gen["git"]
    # The git directory generator: every directory matching the pattern, in the fleet repository.
    matched = sorted(p for d in git["directories"] for p in FLEET.glob(d["path"]) if p.is_dir())
    apps = []
    for path in matched:
        rel = path.relative_to(FLEET).as_posix()
        params = {"path.path": rel, "path.basename": path.name}
        apps.append(fill(spec["template"], params))
    assert [a["metadata"]["name"] for a in apps] == [f"mox-{n}" for n in NAMES]
    for app, name in zip(apps, NAMES, strict=True):
        src, dest = app["spec"]["source"], app["spec"]["destination"]
        assert src["path"] == f"instances/{name}/deploy"
        overlay = FLEET / src["path"]
        assert (overlay / "kustomization.yaml").is_file(), src["path"]
        assert dest["namespace"] == load_yaml(overlay / "kustomization.yaml")[0]["namespace"]
        # Argo CD deploys from the repository the reconciler reads its desired state from.
        assert src["repoURL"] == git["repoURL"] == overlay_config(overlay)["MOX_RECONCILER_SOURCE"]
        assert app["spec"]["project"] and dest["server"]
        assert app["spec"]["syncPolicy"]["automated"]["prune"] is False
    assert spec["syncPolicy"]["preserveResourcesOnDeletion"] is True


def test_flux_kustomizations_one_per_instance() -> None:
    docs = load_yaml(FLEET_DEPLOY / "flux" / "kustomizations.yaml")
    (repo,) = [d for d in docs if d["kind"] == "GitRepository"]
    assert repo["apiVersion"] == "source.toolkit.fluxcd.io/v1"
    assert repo["spec"]["interval"] and repo["spec"]["ref"]["branch"]
    kustomizations = [d for d in docs if d["kind"] == "Kustomization"]
    paths = []
    for k in kustomizations:
        assert k["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1"
        spec = k["spec"]
        assert {"interval", "sourceRef", "prune", "path"} <= set(spec)  # the CRD's required fields and the path
        assert spec["sourceRef"] == {"kind": "GitRepository", "name": repo["metadata"]["name"]}
        assert spec["prune"] is False
        overlay = FLEET / spec["path"]
        assert (overlay / "kustomization.yaml").is_file()
        assert overlay_config(overlay)["MOX_RECONCILER_SOURCE"] == repo["spec"]["url"]
        assert k["metadata"]["name"] == f"mox-{overlay.parent.name}"
        paths.append(PurePosixPath(spec["path"]).as_posix())
    assert paths == [f"instances/{n}/deploy" for n in NAMES]
