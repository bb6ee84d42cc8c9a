"""The deployment files in deploy/: every manifest parses, every command line in them is one the
CLI accepts, paths/uids/volumes agree between the Dockerfile and the manifests, and the
Dockerfile's install steps really produce a working `mox-reconciler` (run in a virtualenv, no
Docker engine needed)."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest
import yaml

from reconciler.cli.main import build_parser
from reconciler.loop.status import STATUS_FILE

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
SYSTEMD = DEPLOY / "systemd"
CI = DEPLOY / "ci"
DOCS = REPO / "docs" / "deploying.md"

YAML_FILES = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])

# Values for placeholders no file of ours defines (CI-provided variables, GitHub expressions).
CI_SAMPLES = {
    "CI_MERGE_REQUEST_DIFF_BASE_SHA": "0123456789abcdef0123456789abcdef01234567",
    "MOX_LIVE_CONFIG": "live/config/mox.conf",
    "GITHUB_STEP_SUMMARY": "/tmp/summary.md",
    "PR": "7",
}


# ---------------------------------------------------------------------------------------------
# Reading the files


@dataclass
class Instruction:
    stage: str
    keyword: str
    value: str
    line: int


@dataclass
class Dockerfile:
    instructions: list[Instruction]
    stages: list[str] = field(default_factory=list)

    def of(self, keyword: str, stage: str | None = None) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword and (stage is None or i.stage == stage)]

    @property
    def final(self) -> str:
        return self.stages[-1]

    def env(self, stage: str) -> dict[str, str]:
        """ENV of a stage (KEY=VALUE pairs, shell-quoted), `$VAR` of earlier ENVs not expanded."""
        out: dict[str, str] = {}
        for ins in self.of("ENV", stage):
            for word in shlex.split(ins.value):
                key, sep, value = word.partition("=")
                assert sep, f"Dockerfile:{ins.line}: ENV in KEY=VALUE form please: {word}"
                out[key] = value
        return out

    def exec_form(self, keyword: str) -> list[str]:
        (ins,) = self.of(keyword, self.final)
        value = json.loads(ins.value)
        assert isinstance(value, list), f"Dockerfile:{ins.line}: {keyword} in exec form (JSON) please"
        return [str(v) for v in value]


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped, labelled by stage."""
    out = Dockerfile([])
    stage = ""
    pending: list[str] = []
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = n
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        keyword, _, value = " ".join(p for p in pending if p).partition(" ")
        pending = []
        keyword = keyword.upper()
        if keyword == "FROM":
            words = value.split()
            stage = words[2] if len(words) >= 3 and words[1].upper() == "AS" else f"stage{len(out.stages)}"
            out.stages.append(stage)
        out.instructions.append(Instruction(stage, keyword, value.strip(), start))
    return out


def copy_parts(value: str) -> tuple[dict[str, str], list[str], str]:
    """COPY flags (--from=...), sources and destination."""
    words = value.split()
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    rest = [w for w in words if not w.startswith("--")]
    return flags, rest[:-1], rest[-1]


def load_yaml(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (systemd EnvironmentFile / compose .env), quotes removed, comments skipped."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        words = shlex.split(value)
        out[key] = words[0] if len(words) == 1 else value
    return out


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def image_env(dockerfile: Dockerfile) -> dict[str, str]:
    return dockerfile.env(dockerfile.final)


OVERLAYS = ("watcher", "cronjob")  # deploy one of them; both include the component common/


def k8s_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(K8S.rglob("*.yaml")):
        docs += [d for d in load_yaml(path) if "kind" in d and "apiVersion" in d and d["kind"] != "Kustomization"]
    return docs


def pod_spec(doc: Mapping[str, Any]) -> dict[str, Any]:
    kind = doc["kind"]
    if kind == "CronJob":
        return dict(doc["spec"]["jobTemplate"]["spec"]["template"]["spec"])
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return dict(doc["spec"]["template"]["spec"])
    raise KeyError(kind)


def workloads() -> list[dict[str, Any]]:
    return [d for d in k8s_docs() if d["kind"] in ("Deployment", "CronJob", "Job", "StatefulSet", "DaemonSet")]


def kustomization(where: str = "common") -> dict[str, Any]:
    (doc,) = load_yaml(K8S / where / "kustomization.yaml")
    return dict(doc)


# ---------------------------------------------------------------------------------------------
# Command lines


def parse_cli(argv: list[str], where: str, env: Mapping[str, str] | None = None) -> argparse.Namespace:
    """Parse only (never run) with the real parser, option defaults from `env` (the MOX_RECONCILER_*
    variables the command runs with); a rejected line fails the test with argparse's message."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = build_parser(env or {}).parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: the CLI rejects {shlex.join(argv)}: {err.getvalue().strip()}")
    assert callable(getattr(args, "func", None)), f"{where}: no verb in {argv}"
    return args


def verbs() -> set[str]:
    (sub,) = [a for a in build_parser({})._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


_K8S_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_SH_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def expand_sh(word: str, env: Mapping[str, str], where: str) -> str:
    """`$VAR`, `${VAR}`, `${VAR:-default}` (shell, compose, systemd); an unknown VAR fails."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        if name in env:
            return env[name]
        if m.group(2) is not None:
            return m.group(2)
        pytest.fail(f"{where}: ${name} has no value (typo, or a variable nobody sets?)")

    return _SH_VAR.sub(sub, word)


_OPERATORS = {";", "&&", "||", "|", ">", ">>", "<", "&", "(", ")", "2>", "2>&1"}
_COMMAND_START = {"then", "else", "do", "if", "!"}


def shell_invocations(script: str, *, loose: bool = False) -> Iterator[list[str]]:
    """The argument lists of every `mox-reconciler ...` command in a shell script (quotes removed,
    variables not expanded), cut at redirections and command separators. `loose` (for prose
    docs): also after `env`, assignments or `docker run` options, when a verb or global option follows."""
    starters = verbs() | {"--config", "--log-format", "--debug"}
    for line in script.splitlines():
        if "mox-reconciler" not in line or line.lstrip().startswith("#"):
            continue
        lex = shlex.shlex(line, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        tokens = list(lex)
        for i, tok in enumerate(tokens):
            at_start = i == 0 or tokens[i - 1] in _OPERATORS or tokens[i - 1] in _COMMAND_START
            if loose:
                at_start = i + 1 < len(tokens) and tokens[i + 1] in starters
            if PurePosixPath(tok).name == "mox-reconciler" and at_start:
                argv: list[str] = []
                for t in tokens[i + 1:]:
                    if t in _OPERATORS or set(t) <= set("<>|&;()"):
                        break
                    argv.append(t)
                yield argv


def k8s_container_commands() -> Iterator[tuple[str, dict[str, Any], dict[str, Any], list[str]]]:
    """(where, workload, container, argv after the entrypoint) for every mox-reconciler container."""
    for doc in workloads():
        for c in pod_spec(doc)["containers"]:
            if c.get("command"):
                assert PurePosixPath(c["command"][0]).name == "mox-reconciler"
                argv = [*c["command"][1:], *c.get("args", [])]
            else:
                argv = list(c.get("args", []))
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc, c, argv


def k8s_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's environment as Kubernetes would set it: envFrom ConfigMaps of the
    kustomization's generator, then env (values; Secret refs get a sample value)."""
    generated = {g["name"]: g for g in kustomization().get("configMapGenerator", [])}
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        name = src["configMapRef"]["name"]
        assert name in generated, f"envFrom ConfigMap {name} is not generated by kustomization.yaml"
        env.update(lit.split("=", 1) for lit in generated[name]["literals"])
    for e in container.get("env", []):
        env[e["name"]] = e.get("value", "sample-secret-value")
    return env


def expand_k8s(word: str, env: Mapping[str, str], where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in env:
            pytest.fail(f"{where}: $({m.group(1)}) is not defined; Kubernetes would pass it verbatim")
        return env[m.group(1)]

    return _K8S_VAR.sub(sub, word)


def systemd_units() -> dict[str, dict[str, dict[str, list[str]]]]:
    """unit file name -> section -> key -> values (systemd allows repeated keys)."""
    units: dict[str, dict[str, dict[str, list[str]]]] = {}
    for path in sorted([*SYSTEMD.glob("*.service"), *SYSTEMD.glob("*.timer")]):
        sections: dict[str, dict[str, list[str]]] = {}
        current: dict[str, list[str]] = {}
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                current = sections.setdefault(line.strip("[]"), {})
                continue
            key, _, value = line.partition("=")
            current.setdefault(key.strip(), []).append(value.strip())
        units[path.name] = sections
    return units


def expand_systemd(cmdline: str, env: Mapping[str, str], where: str) -> list[str]:
    """systemd's rules: `${VAR}` is one word, a word that is exactly `$VAR` splits on whitespace."""
    out: list[str] = []
    for word in shlex.split(cmdline):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if m:
            assert m.group(1) in env, f"{where}: ${m.group(1)} is not in the environment file"
            out += env[m.group(1)].split()
        else:
            out.append(expand_sh(word, env, where))
    return out


CI_GITHUB = ("github-actions.yaml", "github-actions-fleet.yaml")
CI_GITLAB = ("gitlab-ci.yaml", "gitlab-ci-fleet.yaml")


def ci_scripts() -> Iterator[tuple[str, str, dict[str, str]]]:
    """(where, shell script, environment) for every run/script step of the CI files."""
    for name in CI_GITHUB:
        (gh,) = load_yaml(CI / name)
        for job_name, job in gh["jobs"].items():
            for n, step in enumerate(job["steps"]):
                if "run" in step:
                    env = {**gh.get("env", {}), **job.get("env", {}), **step.get("env", {})}
                    yield f"{name} jobs.{job_name}.steps[{n}]", step["run"], {k: str(v) for k, v in env.items()}
    for name in CI_GITLAB:
        (gl,) = load_yaml(CI / name)
        for job_name, job in gl.items():
            if isinstance(job, dict) and "script" in job:
                env = {k: str(v) for k, v in job.get("variables", {}).items()}
                for n, line in enumerate(job["script"]):
                    yield f"{name} {job_name}.script[{n}]", line, env


def docs_commands() -> Iterator[tuple[str, list[str]]]:
    """`mox-reconciler ...` lines in the shell code blocks of docs/deploying.md."""
    text = DOCS.read_text()
    for m in re.finditer(r"```(?:sh|shell|console|bash)\n(.*?)```", text, re.S):
        script = m.group(1).replace("\\\n", " ")
        script = "\n".join(line.removeprefix("$ ") for line in script.splitlines())
        for argv in shell_invocations(script, loose=True):
            yield f"docs/deploying.md:{text.count(chr(10), 0, m.start()) + 1}", argv


# ---------------------------------------------------------------------------------------------
# Every manifest parses


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_manifests_parse(path: Path) -> None:
    docs = load_yaml(path)
    assert docs, f"{path}: no YAML documents"
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"


def test_every_deploy_area_is_there() -> None:
    names = {str(p.relative_to(DEPLOY)) for p in DEPLOY.rglob("*") if p.is_file()}
    for required in ("Dockerfile", "kubernetes/cronjob/cronjob.yaml", "kubernetes/watcher/deployment.yaml",
                     "kubernetes/common/kustomization.yaml", "kubernetes/watcher/kustomization.yaml",
                     "kubernetes/cronjob/kustomization.yaml", "compose/compose.yaml", "systemd/mox-reconciler.service",
                     "systemd/mox-reconciler.timer", "systemd/mox-reconciler-watch.service",
                     "systemd/mox-reconciler.env.example", "ci/github-actions.yaml", "ci/gitlab-ci.yaml"):
        assert required in names


# ---------------------------------------------------------------------------------------------
# Every command line is accepted by the CLI


def test_dockerfile_default_command_parses(dockerfile: Dockerfile, image_env: dict[str, str]) -> None:
    assert dockerfile.exec_form("ENTRYPOINT") == ["mox-reconciler"]
    args = parse_cli(dockerfile.exec_form("CMD"), "Dockerfile CMD", image_env)
    assert args.command == "watch"
    assert args.source == "/desired" and args.interval == 60.0  # from the image's ENV
    assert args.status_file == Path(image_env["MOX_RECONCILER_STATUS_FILE"])


def test_deploy_command_lines_expand_no_variables(dockerfile: Dockerfile) -> None:
    """Options come from MOX_RECONCILER_* variables, not from shell expansion in command lines."""
    lines = [(w, argv) for w, _, _, argv in k8s_container_commands()]
    lines.append(("Dockerfile CMD", dockerfile.exec_form("CMD")))
    (compose,) = load_yaml(COMPOSE)
    lines.append(("compose.yaml", compose["services"]["reconciler"]["command"]))
    for name, unit in systemd_units().items():
        lines += [(name, shlex.split(cmd)) for cmd in unit.get("Service", {}).get("ExecStart", [])]
    assert len(lines) == 6  # 2 Kubernetes workloads, the image, compose, 2 systemd units
    for where, argv in lines:
        assert not [a for a in argv if "$" in a], f"{where}: {argv}"


def test_kubernetes_commands_parse(image_env: dict[str, str]) -> None:
    seen = set()
    literals = dict(lit.split("=", 1) for g in kustomization()["configMapGenerator"] for lit in g["literals"])
    for where, doc, container, argv in k8s_container_commands():
        env = {**image_env, **k8s_env(container)}
        args = parse_cli([expand_k8s(a, env, where) for a in argv], where, env)
        assert (args.source, args.ref) == (literals["MOX_RECONCILER_SOURCE"], literals["MOX_RECONCILER_REF"]), where
        seen.add((doc["kind"], args.command))
        if args.command == "apply":
            assert args.yes, f"{where}: a Job has no terminal; pass --yes"
        if args.command == "watch":
            port = int(args.metrics_addr.rpartition(":")[2])
            ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
            assert port in ports.values(), f"{where}: --metrics-addr port {port} is not a containerPort"
            for kind, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                probe = container[kind]["httpGet"]
                assert probe["path"] == path, kind
                assert ports.get(probe["port"], probe["port"]) == port, kind
    assert ("CronJob", "apply") in seen
    assert ("Deployment", "watch") in seen


def test_compose_commands_parse(dockerfile: Dockerfile, image_env: dict[str, str]) -> None:
    (doc,) = load_yaml(COMPOSE)
    svc = doc["services"]["reconciler"]
    assert "entrypoint" not in svc  # the image's ENTRYPOINT
    for dotenv in ({}, read_env_file(COMPOSE.parent / "env.example")):
        env = {**image_env, **{k: expand_sh(v, dotenv, "compose.yaml") for k, v in svc["environment"].items()}}
        argv = [expand_sh(a, dotenv, "compose.yaml") for a in svc["command"]]
        args = parse_cli(argv, "compose.yaml services.reconciler.command", env)
        assert args.command == "watch"
        assert args.source == dotenv.get("MOX_RECONCILER_SOURCE", "/desired") and args.interval == 60.0


def test_systemd_execstart_parses() -> None:
    env = read_env_file(SYSTEMD / "mox-reconciler.env.example")
    verbs = {}
    for name, unit in systemd_units().items():
        for cmd in unit.get("Service", {}).get("ExecStart", []):
            argv = expand_systemd(cmd.lstrip("-@:+!"), env, name)
            assert PurePosixPath(argv[0]).name == "mox-reconciler", f"{name}: ExecStart runs {argv[0]}"
            args = parse_cli(argv[1:], f"{name} ExecStart", env)
            verbs[name] = args.command
            # The source options of the environment file reach both units.
            assert (args.source, args.ref, args.subdir) == (env["MOX_RECONCILER_SOURCE"], env["MOX_RECONCILER_REF"],
                                                            env["MOX_RECONCILER_SUBDIR"]), name
    assert verbs == {"mox-reconciler.service": "apply", "mox-reconciler-watch.service": "watch"}


def test_ci_commands_parse() -> None:
    found: dict[str, list[argparse.Namespace]] = {}
    for where, script, env in ci_scripts():
        for argv in shell_invocations(script):
            full = {**CI_SAMPLES, **{k: v for k, v in env.items() if "${{" not in v}}
            args = parse_cli([expand_sh(a, full, where) for a in argv], where)
            found.setdefault(where.split()[0], []).append(args)
    assert set(found) == {*CI_GITHUB, *CI_GITLAB}
    for where, runs in found.items():
        plans = [a for a in runs if a.command == "plan"]
        assert plans and all(a.format == "markdown" for a in plans), where
        if "fleet" in where:
            # Every instance validated, every instance planned against the base commit.
            assert {a.command for a in runs} == {"validate", "plan"}, where
            assert all(a.all_instances == "instances" for a in runs), where
            assert all(a.base_ref for a in plans), where
        else:
            assert {a.command for a in runs} == {"plan"}, where
            # One against the operator's live-config snapshot, one against the base commit.
            assert any(a.base_ref for a in runs) and any(a.config and not a.base_ref for a in runs), where


def test_ci_runs_only_for_pull_requests() -> None:
    """On merge nothing runs: the watcher applies."""
    for name in CI_GITHUB:
        (gh,) = load_yaml(CI / name)
        triggers = gh.get("on", gh.get(True))  # YAML 1.1 reads the key `on` as true
        assert set(triggers) == {"pull_request"}
    for name in CI_GITLAB:
        (gl,) = load_yaml(CI / name)
        for job in (j for j in gl.values() if isinstance(j, dict) and "script" in j):
            assert [r["if"] for r in job["rules"]] == ['$CI_PIPELINE_SOURCE == "merge_request_event"']


def test_docs_commands_parse() -> None:
    lines = list(docs_commands())
    assert len(lines) >= 5
    assert {argv[0] for _, argv in lines} >= {"watch", "plan"}
    env = {**read_env_file(SYSTEMD / "mox-reconciler.env.example"), **CI_SAMPLES, "PWD": "/home/me/desired"}
    for where, argv in lines:
        parse_cli([expand_sh(a, env, where) for a in argv], where)


# ---------------------------------------------------------------------------------------------
# Paths, uids, volumes agree


def test_image_user_matches_mox_uid(dockerfile: Dockerfile) -> None:
    """uid/gid 1000 everywhere: the uid of mox.conf's `User:` in mox's container setup."""
    (user,) = dockerfile.of("USER", dockerfile.final)
    assert user.value == "1000:1000"
    run = " ".join(i.value for i in dockerfile.of("RUN", dockerfile.final))
    assert "--uid 1000" in run and "--gid 1000" in run
    for where, doc, _, _ in k8s_container_commands():
        sc = pod_spec(doc)["securityContext"]
        assert (sc["runAsUser"], sc["runAsGroup"], sc["runAsNonRoot"]) == (1000, 1000, True), where
        assert "fsGroup" not in sc, f"{where}: fsGroup would chgrp mox's config volume"
    (compose,) = load_yaml(COMPOSE)
    user = compose["services"]["reconciler"]["user"]
    assert expand_sh(user, {}, "compose.yaml") == "1000:1000"  # mox's uid from MOX_UID, 1000 by default
    assert expand_sh(user, {"MOX_UID": "1001"}, "compose.yaml") == "1001:1001"
    assert read_env_file(COMPOSE.parent / "env.example")["MOX_UID"] == "1000"
    # The example mox config names that uid too.
    assert "User: 1000\n" in (REPO / "examples/mox/config/mox.conf").read_text()


def test_paths_agree(dockerfile: Dockerfile, image_env: dict[str, str]) -> None:
    config_dir = str(PurePosixPath(image_env["MOXCONF"]).parent)
    cache = image_env["XDG_CACHE_HOME"]
    assert config_dir == "/mox/config"  # mox's official image: WORKDIR /mox, config/ and data/
    assert image_env["MOX_RECONCILER_STATUS_FILE"] == f"{config_dir}/{STATUS_FILE}"
    run = " ".join(i.value for i in dockerfile.of("RUN", dockerfile.final))
    assert f"chown 1000:1000 {cache}" in run, "the cache dir must be writable by the image user"
    default_source = parse_cli(dockerfile.exec_form("CMD"), "Dockerfile CMD", image_env).source
    assert f"mkdir -p {cache} {default_source}" in run

    # Kubernetes: same mounts in both workloads; config read-write, data read-only, cache and
    # /tmp writable volumes (the root fs is read-only).
    claims: set[tuple[str, str]] = set()
    for where, doc, container, _ in k8s_container_commands():
        spec = pod_spec(doc)
        volumes = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        for m in container["volumeMounts"]:
            assert m["name"] in volumes, f"{where}: volumeMount {m['name']} has no volume"
        assert not mounts[config_dir].get("readOnly"), f"{where}: the config dir must be writable"
        assert mounts["/mox/data"].get("readOnly") is True
        assert "emptyDir" in volumes[mounts[cache]["name"]], where
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]], where
        for path in (config_dir, "/mox/data"):
            claims.add((path, volumes[mounts[path]["name"]]["persistentVolumeClaim"]["claimName"]))
        secrets = [v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v]
        refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e]
        assert set(secrets) == set(refs) == {"mox-reconciler-git"}, where
        ssh = next(e["value"] for e in container["env"] if e["name"] == "GIT_SSH_COMMAND")
        secret_dir = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] in
                          [v["name"] for v in spec["volumes"] if "secret" in v])
        assert f"-i {secret_dir}/ssh-privatekey" in ssh and f"{secret_dir}/known_hosts" in ssh
    assert claims == {(config_dir, "mox-config"), ("/mox/data", "mox-data")}

    # compose: the reconciler mounts the same host dirs as mox, at the same paths.
    (compose,) = load_yaml(COMPOSE)
    vols = {name: [expand_sh(v, {}, "compose.yaml") for v in compose["services"][name]["volumes"]]
            for name in ("mox", "reconciler")}
    mox = {v.split(":")[1]: v.split(":")[0] for v in vols["mox"]}
    rec = {v.split(":")[1]: v for v in vols["reconciler"]}
    assert compose["services"]["mox"]["working_dir"] == "/mox"
    # Bind mounts carry the shared SELinux label, as mox's own docker-compose.yml does.
    assert all(v.endswith(":z") for v in vols["mox"])
    assert rec[config_dir] == f"{mox[config_dir]}:{config_dir}:z"
    assert rec["/mox/data"] == f"{mox['/mox/data']}:/mox/data:ro,z"
    assert rec[cache].split(":")[0] in compose["volumes"]
    assert default_source in rec
    assert expand_sh(compose["services"]["reconciler"]["environment"]["MOX_RECONCILER_SOURCE"], {},
                     "compose") == default_source

    # The gitconfig trusts the default source dir (a bind mount owned by another uid).
    gitconfig = (DEPLOY / "gitconfig").read_text()
    assert f"directory = {default_source}\n" in gitconfig

    # systemd: the env file's MOXCONF dir is the one the units may write.
    env = read_env_file(SYSTEMD / "mox-reconciler.env.example")
    for name, unit in systemd_units().items():
        if "Service" in unit:
            assert unit["Service"]["ReadWritePaths"] == [str(PurePosixPath(env["MOXCONF"]).parent)], name
            assert unit["Service"]["User"] == ["mox"], name
            assert unit["Service"]["EnvironmentFile"] == ["/etc/mox-reconciler/mox-reconciler.env"], name


def test_healthcheck_agrees_with_command(dockerfile: Dockerfile, image_env: dict[str, str]) -> None:
    (hc,) = dockerfile.of("HEALTHCHECK", dockerfile.final)
    script = json.loads(hc.value.split(" CMD ", 1)[1])
    copies = {copy_parts(i.value)[2]: copy_parts(i.value)[1] for i in dockerfile.of("COPY", dockerfile.final)}
    assert copies[script[1]] == ["deploy/healthcheck.py"]
    module = load_healthcheck()
    assert image_env["MOX_RECONCILER_STATUS_FILE"] == module.STATUS_FILE
    assert image_env["MOX_RECONCILER_HEALTH_URL"] == module.HEALTH_URL
    args = parse_cli(dockerfile.exec_form("CMD"), "Dockerfile CMD", image_env)
    port = args.metrics_addr.rpartition(":")[2]
    assert f"http://127.0.0.1:{port}/healthz" == module.HEALTH_URL
    assert [i.value for i in dockerfile.of("EXPOSE", dockerfile.final)] == [port]
    (compose,) = load_yaml(COMPOSE)
    assert compose["services"]["reconciler"]["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_security_settings() -> None:
    for where, doc, container, _ in k8s_container_commands():
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        res = container["resources"]
        assert res["requests"]["cpu"] and res["requests"]["memory"], where
        assert res["limits"]["cpu"] and res["limits"]["memory"], where
        assert pod_spec(doc)["automountServiceAccountToken"] is False, where
    (compose,) = load_yaml(COMPOSE)
    svc = compose["services"]["reconciler"]
    assert svc["read_only"] is True and svc["tmpfs"] == ["/tmp"] and svc["cap_drop"] == ["ALL"]
    (deployment,) = [d for d in k8s_docs() if d["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    (cron,) = [d for d in k8s_docs() if d["kind"] == "CronJob"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"


def test_kustomization_ties_the_manifests() -> None:
    """Two overlays: the watcher (Deployment + Service) or the CronJob, never both, each in mox's
    namespace; the component they share sets the option variables and the image by digest."""
    common = kustomization()
    assert common["kind"] == "Component" and "resources" not in common
    (image,) = common["images"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", image["digest"]) and "newTag" not in image
    kinds = {}
    for overlay in OVERLAYS:
        kz = kustomization(overlay)
        assert kz["namespace"] == "mox" and kz["components"] == ["../common"]
        for res in kz["resources"]:
            assert (K8S / overlay / res).is_file(), res
        kinds[overlay] = {d["kind"] for res in kz["resources"] for d in load_yaml(K8S / overlay / res)}
    assert kinds == {"watcher": {"Deployment", "Service"}, "cronjob": {"CronJob"}}
    images = {c["image"] for _, _, c, _ in k8s_container_commands()}
    assert images == {image["name"]}
    (service,) = [d for d in k8s_docs() if d["kind"] == "Service"]
    assert service["spec"]["publishNotReadyAddresses"] is True  # metrics stay scraped while not ready


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_build(tmp_path: Path, overlay: str) -> None:
    """kubectl's own kustomize renders each overlay: generated ConfigMap names reach the workload."""
    out = subprocess.run(["kubectl", "kustomize", str(K8S / overlay)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert cm["metadata"]["name"].startswith("mox-reconciler-")  # hashed
    assert {d["metadata"]["namespace"] for d in docs} == {"mox"}
    (workload,) = [d for d in docs if d["kind"] in ("Deployment", "CronJob")]
    (c,) = pod_spec(workload)["containers"]
    assert c["envFrom"][0]["configMapRef"]["name"] == cm["metadata"]["name"]
    assert c["image"].startswith("registry.example.org/mox-reconciler@sha256:")
    # The rendered objects against the Kubernetes API schema too.
    (tmp_path / "rendered.yaml").write_text(out.stdout)
    lint([linter("kubernetes-validate"), "--strict", "--no-warn", "-k", "1.30.0", str(tmp_path / "rendered.yaml")])


def test_systemd_units_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the units (ExecStart pointed at this checkout's binary)."""
    analyze = linter("systemd-analyze")
    out = subprocess.run([analyze, "verify", "--man=no", *systemd_units_here(tmp_path)], capture_output=True,
                         text=True, timeout=60)
    problems = [ln for ln in (out.stdout + out.stderr).splitlines()
                if ln.strip() and "mox.service" not in ln]  # mox's own unit is not installed here
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


# ---------------------------------------------------------------------------------------------
# The image's git credential helper and health check, run for real


def git_credential_fill(env: Mapping[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "credential", "fill"], input="protocol=https\nhost=git.example.org\npath=mail/desired.git\n\n",
        capture_output=True, text=True, timeout=30,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_SYSTEM": str(DEPLOY / "gitconfig"),
             "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0", **env},
    )


def test_gitconfig_credential_helper_answers_from_env(tmp_path: Path) -> None:
    out = git_credential_fill({"GIT_TOKEN": "tok-1234", "GIT_USERNAME": "oauth2"}, tmp_path)
    assert out.returncode == 0, out.stderr
    assert "username=oauth2\n" in out.stdout and "password=tok-1234\n" in out.stdout
    out = git_credential_fill({"GIT_TOKEN": "tok-1234"}, tmp_path)
    assert "username=git\n" in out.stdout
    # Without a token the helper is silent and git fails instead of prompting.
    out = git_credential_fill({}, tmp_path)
    assert out.returncode != 0 and "password=" not in out.stdout


def load_healthcheck() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_healthcheck", DEPLOY / "healthcheck.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Fixed(BaseHTTPRequestHandler):
    code = 200

    def do_GET(self) -> None:
        self.send_response(self.code)
        self.end_headers()
        self.wfile.write(b"{}\n")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("code", [200, 503])
def test_healthcheck_asks_healthz(tmp_path: Path, code: int) -> None:
    handler = type("H", (_Fixed,), {"code": code})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
        env = {**os.environ, "MOX_RECONCILER_HEALTH_URL": url,
               "MOX_RECONCILER_STATUS_FILE": str(tmp_path / "absent.json")}
        out = subprocess.run([sys.executable, str(DEPLOY / "healthcheck.py")], env=env, capture_output=True,
                             text=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == (0 if code == 200 else 1), out.stdout
    assert str(code) in out.stdout


def test_healthcheck_falls_back_to_status_file(tmp_path: Path) -> None:
    module = load_healthcheck()
    url = f"http://127.0.0.1:{free_port()}/healthz"  # nothing listens: no --metrics-addr
    status = tmp_path / STATUS_FILE
    assert module.check(url, str(status), 600)[0] is False  # no status file yet
    status.write_text("{}")
    assert module.check(url, str(status), 600)[0] is True
    old = time.time() - 3600
    os.utime(status, (old, old))
    ok, why = module.check(url, str(status), 600)
    assert not ok and "limit 600s" in why


# ---------------------------------------------------------------------------------------------
# The Dockerfile's install steps, run in a virtualenv; then the image's default command


class ImageFS:
    """Container paths mapped under a scratch root (the image's filesystem, emulated)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, path: str) -> Path:
        assert path.startswith("/"), path
        return self.root / path.lstrip("/")

    def copy(self, src: Path, dest: str) -> None:
        target = self(dest)
        if dest.endswith("/"):
            target = target / src.name
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)


def run_build_stage(df: Dockerfile, fs: ImageFS) -> str:
    """COPY and RUN of the stage the final image copies its virtualenv from; returns that path."""
    (venv_copy,) = [i for i in df.of("COPY", df.final) if "from" in copy_parts(i.value)[0]]
    flags, (venv_src,), venv_dest = copy_parts(venv_copy.value)
    assert venv_src == venv_dest, "a virtualenv only works at the path it was created at"
    build = flags["from"]
    env = {k: v for k, v in df.env(build).items()}
    for ins in df.instructions:
        if ins.stage != build:
            continue
        if ins.keyword == "COPY":
            _, sources, dest = copy_parts(ins.value)
            for src in sources:
                fs.copy(REPO / src, dest)
        elif ins.keyword == "RUN":
            for command in ins.value.split(" && "):  # one RUN (hadolint DL3059), commands in sequence
                argv = shlex.split(command)
                assert not set(argv) & _OPERATORS, f"Dockerfile:{ins.line}: keep install steps plain commands"
                argv = [sys.executable if a == "python" else str(fs(a)) if a.startswith("/") else a for a in argv]
                out = subprocess.run(argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=900)
                assert out.returncode == 0, f"Dockerfile:{ins.line}: {command}\n{out.stdout}\n{out.stderr}"
    return venv_src


def commit_tree(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest)
    git_env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "desired state"]):
        subprocess.run(["git", *cmd], cwd=dest, env=git_env, check=True, timeout=60)


@pytest.mark.slow
def test_dockerfile_install_and_default_command(tmp_path: Path, dockerfile: Dockerfile,
                                                image_env: dict[str, str]) -> None:
    fs = ImageFS(tmp_path / "image")
    venv = run_build_stage(dockerfile, fs)

    # The final stage's own files (COPY without --from), then mox's volumes and the desired state.
    for ins in dockerfile.of("COPY", dockerfile.final):
        flags, sources, dest = copy_parts(ins.value)
        if "from" not in flags:
            for src in sources:
                fs.copy(REPO / src, dest)
    config_dir = str(PurePosixPath(image_env["MOXCONF"]).parent)
    shutil.copytree(REPO / "examples/mox/config", fs(config_dir))
    shutil.copytree(REPO / "examples/mox/data", fs("/mox/data"))
    cmd = dockerfile.exec_form("CMD")
    # No mox runs here, so a password would stay pending (tests/test_passwords.py): the cycle
    # applies the example without alice's Password.
    example = tmp_path / "example-desired"
    shutil.copytree(REPO / "examples/desired", example)
    accounts = example / "accounts.yaml"
    accounts.write_text(re.sub(r"(?m)^    Password: .*\n", "", accounts.read_text(encoding="utf-8")), encoding="utf-8")
    commit_tree(example, fs(image_env["MOX_RECONCILER_SOURCE"]))
    for d in (image_env["XDG_CACHE_HOME"], image_env["HOME"]):
        fs(d).mkdir(parents=True, exist_ok=True)

    # The image's environment with its paths mapped; PATH finds the venv's entrypoint first.
    env = {k: str(fs(v)) if v.startswith("/") and k != "PATH" else v for k, v in image_env.items()
           if k != "MOX_RECONCILER_HEALTH_URL"}
    env["PATH"] = os.pathsep.join(str(fs(p)) if p.startswith(venv) else p
                                  for p in image_env["PATH"].replace("$PATH", os.environ["PATH"]).split(":"))
    env["GIT_CONFIG_SYSTEM"] = str(fs("/etc/gitconfig"))
    env["GIT_CONFIG_GLOBAL"] = os.devnull
    entry = shutil.which(dockerfile.exec_form("ENTRYPOINT")[0], path=env["PATH"])
    assert entry is not None and Path(entry).is_relative_to(fs(venv)), entry
    (workdir,) = dockerfile.of("WORKDIR", dockerfile.final)
    argv = [entry, *(str(fs(a)) if a.startswith("/") else a for a in cmd), "--once"]

    domains_before = fs(f"{config_dir}/domains.conf").read_bytes()
    out = subprocess.run(argv, cwd=fs(workdir.value), env={"LANG": "C.UTF-8", **env}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    status_file = Path(env["MOX_RECONCILER_STATUS_FILE"])
    status = json.loads(status_file.read_text())
    assert status["result"] == "applied" and status["watcher"]["state"] == "once", status
    assert fs(f"{config_dir}/domains.conf").read_bytes() != domains_before

    # Again: nothing to do, still exit 0; and the image's health check, run from its copied
    # path, finds the fresh status file (no metrics server with --once).
    out = subprocess.run(argv, cwd=fs(workdir.value), env={"LANG": "C.UTF-8", **env}, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(status_file.read_text())["result"] == "unchanged"
    (hc,) = dockerfile.of("HEALTHCHECK", dockerfile.final)
    script = json.loads(hc.value.split(" CMD ", 1)[1])
    health = subprocess.run([str(fs(venv)) + "/bin/python", str(fs(script[1]))], capture_output=True, text=True,
                            env={**env, "MOX_RECONCILER_HEALTH_URL": f"http://127.0.0.1:{free_port()}/healthz"},
                            timeout=30)
    assert health.returncode == 0, health.stdout


# ---------------------------------------------------------------------------------------------
# The deploy files pass their linters (installed from PyPI by the test extra; systemd from Debian)


def linter(name: str) -> str:
    """The linter's executable: beside this interpreter (the virtualenv's bin) or on PATH; skips
    the test, saying why, when it is not installed."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' brings it)")
    return found


def lint(argv: list[str], cwd: Path = REPO, env: Mapping[str, str] | None = None) -> None:
    out = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, **(env or {})})
    assert out.returncode == 0, f"{shlex.join(argv)}:\n{out.stdout}{out.stderr}"


def test_yamllint() -> None:
    lint([linter("yamllint"), "--strict", "-c", str(DEPLOY / ".yamllint.yaml"), str(DEPLOY)])


def test_hadolint() -> None:
    lint([linter("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)])


def test_actionlint(tmp_path: Path) -> None:
    """actionlint (with shellcheck on the `run:` scripts) on the workflow as a repository holds it."""
    shellcheck = linter("shellcheck")
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    for name in CI_GITHUB:
        shutil.copy(CI / name, workflows / name)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True, timeout=60)
    lint([linter("actionlint"), "-color=false", "-shellcheck", shellcheck], cwd=tmp_path)


def test_workflow_least_privilege() -> None:
    """Nothing by default; read for the job that runs on the pull request's files, write only for
    the one that comments; actions pinned by commit; the checkout keeps no credentials."""
    for name in CI_GITHUB:
        check_least_privilege(name)


def check_least_privilege(name: str) -> None:
    (gh,) = load_yaml(CI / name)
    assert gh["permissions"] == {}
    jobs = gh["jobs"]
    assert jobs["plan"]["permissions"] == {"contents": "read"}
    assert jobs["comment"]["permissions"] == {"pull-requests": "write"}
    assert not [s for s in jobs["comment"]["steps"] if "checkout" in str(s.get("uses", ""))]
    for job in jobs.values():
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", step["uses"]), step["uses"]
            if "checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"),
                         ids=lambda p: str(p.relative_to(K8S)))
def test_kubernetes_schema(path: Path) -> None:
    """Every manifest against the Kubernetes API schema, strictly (no unknown fields)."""
    lint([linter("kubernetes-validate"), "--strict", "--no-warn", "-k", "1.30.0", str(path)])


def systemd_units_here(tmp_path: Path) -> list[str]:
    """The units, ExecStart pointed at this checkout's binary (verify checks it exists)."""
    binary = Path(sys.executable).parent / "mox-reconciler"
    assert binary.exists()
    for unit in [*SYSTEMD.glob("*.service"), *SYSTEMD.glob("*.timer")]:
        text = unit.read_text().replace("/opt/mox-reconciler/bin/mox-reconciler", str(binary))
        (tmp_path / unit.name).write_text(text)
    return sorted(str(p) for p in tmp_path.iterdir())


# systemd-analyze security's exposure (0 best, 10 worst) the services may have at most.
SYSTEMD_EXPOSURE = 2.0


@pytest.mark.parametrize("unit", ["mox-reconciler.service", "mox-reconciler-watch.service"])
def test_systemd_security(tmp_path: Path, unit: str) -> None:
    analyze = linter("systemd-analyze")
    systemd_units_here(tmp_path)
    out = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", unit], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", out.stdout)
    assert m, out.stdout + out.stderr
    assert float(m.group(1)) <= SYSTEMD_EXPOSURE, out.stdout


# ---------------------------------------------------------------------------------------------
# The GitLab job keeps one note per merge request


class _Notes(BaseHTTPRequestHandler):
    """GitLab's merge request notes API, as far as the job uses it."""

    notes: list[dict[str, Any]]
    tokens: list[str]

    def _answer(self, data: Any, code: int = 200) -> None:
        body = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict[str, Any]:
        self.tokens.append(self.headers["PRIVATE-TOKEN"])
        data: dict[str, Any] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        return data

    def do_GET(self) -> None:
        assert self.path.startswith("/api/v4/projects/42/merge_requests/7/notes?")
        self._answer(self.notes)

    def do_POST(self) -> None:
        self.notes.append({"id": len(self.notes) + 100, "body": self._body()["body"]})
        self._answer(self.notes[-1], 201)

    def do_PUT(self) -> None:
        note_id = int(self.path.rsplit("/", 1)[1])
        (note,) = [n for n in self.notes if n["id"] == note_id]
        note["body"] = self._body()["body"]
        self._answer(note)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_gitlab_job_updates_one_note(tmp_path: Path) -> None:
    (gl,) = load_yaml(CI / "gitlab-ci.yaml")
    (script,) = [s for s in gl["mox-plan"]["script"] if "EOF_NOTE" in s]
    handler = type("Notes", (_Notes,), {"notes": [{"id": 1, "body": "a reviewer's note"}], "tokens": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {"PATH": os.environ["PATH"], "CI_API_V4_URL": f"http://127.0.0.1:{server.server_address[1]}/api/v4",
           "CI_PROJECT_ID": "42", "CI_MERGE_REQUEST_IID": "7", "MOX_PLAN_NOTE_TOKEN": "glpat-test"}
    try:
        for plan in ("Plan: 1 to add", "Plan: 2 to add"):  # two pushes
            (tmp_path / "plan.md").write_text(plan + "\n")
            out = subprocess.run(["sh", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=60)
            assert out.returncode == 0, out.stderr
    finally:
        server.shutdown()
        server.server_close()
    notes = handler.notes
    assert [n["body"] for n in notes] == ["a reviewer's note", "<!-- mox-reconciler plan -->\nPlan: 2 to add\n"]
    assert handler.tokens == ["glpat-test", "glpat-test"]
