"""reconciler.source against real git repositories (GitPython in tmp_path, bare repos as remotes)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from reconciler.desired.source import (
    default_cache_dir,
    fetch,
    materialize,
    redact,
    resolve_source,
)
from reconciler.errors import SourceError

pytestmark = pytest.mark.usefixtures("isolated_git")


def init_repo(path: Path) -> git.Repo:
    path.mkdir(parents=True, exist_ok=True)
    return git.Repo.init(path, initial_branch="main")


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def commit(repo: git.Repo, files: dict[str, str], message: str, *extra: str) -> str:
    write(Path(repo.working_tree_dir or ""), files)
    repo.git.add("-A")
    repo.git.commit("-q", "-m", message, *extra)
    return str(repo.head.commit.hexsha)


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[git.Repo]:
    repo = init_repo(tmp_path / "checkout")
    commit(repo, {"README": "top\n", "desired/domains.yaml": "v1\n"}, "first")
    with repo:
        yield repo


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[Path, git.Repo]]:
    """A bare repository (the "server") and a work repo that pushes to it."""
    bare = tmp_path / "server" / "desired.git"
    git.Repo.init(bare, bare=True, mkdir=True, initial_branch="main").close()
    work = init_repo(tmp_path / "work")
    work.create_remote("origin", str(bare))
    commit(work, {"desired/domains.yaml": "v1\n"}, "first")
    work.git.push("-q", "origin", "main")
    with work:
        yield bare, work


def clone_count(caplog: pytest.LogCaptureFixture) -> int:
    return sum("cloning" in r.getMessage() for r in caplog.records)


# --- local directories ------------------------------------------------------------------------


def test_plain_directory(tmp_path: Path) -> None:
    d = tmp_path / "plain"
    write(d, {"domains.yaml": "x\n"})
    src = resolve_source(str(d))
    assert src.path == d.resolve()
    assert src.commit is None and not src.dirty and src.repo_dir is None
    assert src.location == str(d.resolve())
    assert src.to_json()["commit"] is None


def test_plain_directory_refuses_ref_and_signatures(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(SourceError, match="not in a git repository"):
        resolve_source(str(tmp_path / "plain"), ref="main")
    with pytest.raises(SourceError, match="not in a git repository"):
        resolve_source(str(tmp_path / "plain"), require_signed=True)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such directory"):
        resolve_source(str(tmp_path / "nope"))


def test_clean_checkout(checkout: git.Repo) -> None:
    root = Path(checkout.working_tree_dir or "")
    src = resolve_source(str(root))
    head = checkout.head.commit
    assert src.path == root.resolve() and src.subdir == ""
    assert src.commit is not None
    assert src.commit.sha == head.hexsha
    assert src.commit.subject == "first"
    assert src.commit.author == "Test Author <author@example.org>"
    assert src.commit.date == head.authored_datetime.isoformat()
    assert src.commit.signed is None
    assert src.commit.short() == f"{head.hexsha[:7]} first"
    assert src.commit.to_json() == {"sha": head.hexsha, "author": "Test Author <author@example.org>",
                                    "date": head.authored_datetime.isoformat(), "subject": "first",
                                    "signed": None}
    assert not src.dirty


def test_dirty_checkout(checkout: git.Repo) -> None:
    root = Path(checkout.working_tree_dir or "")
    write(root, {"desired/domains.yaml": "edited\n"})
    assert resolve_source(str(root)).dirty
    checkout.git.checkout("--", ".")
    assert not resolve_source(str(root)).dirty
    write(root, {"desired/new.yaml": "untracked\n"})
    assert resolve_source(str(root)).dirty
    (root / "desired/new.yaml").unlink()
    write(root, {"desired/domains.yaml": "staged\n"})
    checkout.git.add("-A")
    assert resolve_source(str(root)).dirty


def test_subdirectory_of_checkout(checkout: git.Repo) -> None:
    root = Path(checkout.working_tree_dir or "")
    src = resolve_source(str(root / "desired"))
    assert src.path == (root / "desired").resolve()
    assert src.subdir == "desired" and src.repo_dir == root.resolve()
    assert src.commit is not None and src.commit.sha == checkout.head.commit.hexsha
    # Changes outside the subtree do not make it dirty; inside they do.
    write(root, {"README": "changed\n", "other/x": "untracked\n"})
    assert not resolve_source(str(root / "desired")).dirty
    assert resolve_source(str(root)).dirty
    write(root, {"desired/domains.yaml": "changed\n"})
    assert resolve_source(str(root / "desired")).dirty
    # The same through the subdir argument.
    by_arg = resolve_source(str(root), subdir="desired")
    assert by_arg.path == src.path and by_arg.subdir == "desired"


def test_bad_subdir(checkout: git.Repo) -> None:
    root = Path(checkout.working_tree_dir or "")
    with pytest.raises(SourceError, match="relative path inside"):
        resolve_source(str(root), subdir="../escape")
    with pytest.raises(SourceError, match="no such directory"):
        resolve_source(str(root), subdir="missing")


def test_local_ref_branch_tag_sha_without_touching_work_tree(checkout: git.Repo, tmp_path: Path) -> None:
    root = Path(checkout.working_tree_dir or "")
    first = checkout.head.commit.hexsha
    checkout.git.tag("v1")
    checkout.git.tag("-a", "v1-annotated", "-m", "annotated")
    checkout.git.branch("old")
    second = commit(checkout, {"desired/domains.yaml": "v2\n"}, "second")
    write(root, {"desired/domains.yaml": "uncommitted\n"})
    cache = tmp_path / "cache"
    for ref in ["old", "v1", "v1-annotated", first, first[:8], "HEAD~1"]:
        src = resolve_source(str(root / "desired"), ref=ref, cache_dir=cache)
        assert src.commit is not None and src.commit.sha == first, ref
        assert (src.path / "domains.yaml").read_text() == "v1\n"
        assert src.ref == ref and not src.dirty and src.subdir == "desired"
    head = resolve_source(str(root), ref="main", cache_dir=cache)
    assert head.commit is not None and head.commit.sha == second
    assert (head.path / "desired/domains.yaml").read_text() == "v2\n"
    # The work tree and its HEAD are as they were.
    assert (root / "desired/domains.yaml").read_text() == "uncommitted\n"
    assert checkout.head.commit.hexsha == second and checkout.active_branch.name == "main"


def test_local_ref_falls_back_to_origin_branch(tmp_path: Path, remote: tuple[Path, git.Repo]) -> None:
    """CI checkouts are detached with only remote-tracking branches: --base-ref main means origin/main."""
    bare, work = remote
    ci = git.Repo.clone_from(str(bare), tmp_path / "ci")
    with ci:
        ci.git.checkout("-q", "--detach")
        ci.git.branch("-D", "main")
        src = resolve_source(str(tmp_path / "ci"), ref="main", cache_dir=tmp_path / "c")
        assert src.commit is not None and src.commit.sha == work.head.commit.hexsha


def test_unknown_ref_local(checkout: git.Repo, tmp_path: Path) -> None:
    root = Path(checkout.working_tree_dir or "")
    with pytest.raises(SourceError, match="unknown ref 'no-such-branch'"):
        resolve_source(str(root), ref="no-such-branch", cache_dir=tmp_path / "c")
    with pytest.raises(SourceError, match="invalid ref"):
        resolve_source(str(root), ref="--upload-pack=evil", cache_dir=tmp_path / "c")


# --- remotes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_remote_cloned_once_then_fetched(
    form: str, tmp_path: Path, remote: tuple[Path, git.Repo], caplog: pytest.LogCaptureFixture
) -> None:
    bare, work = remote
    url = str(bare) if form == "path" else bare.as_uri()
    cache = tmp_path / "cache"
    caplog.set_level(logging.INFO, logger="reconciler")
    src = resolve_source(url, cache_dir=cache, subdir="desired")
    assert src.commit is not None and src.commit.sha == work.head.commit.hexsha
    assert src.remote and not src.dirty and src.subdir == "desired"
    assert (src.path / "domains.yaml").read_text() == "v1\n"
    assert src.location == url
    assert src.path.is_relative_to(cache)
    assert clone_count(caplog) == 1
    marker = cache / "repo.git" / "marker-from-test"
    marker.write_text("still the first clone\n")

    second = commit(work, {"desired/domains.yaml": "v2\n", "desired/more.yaml": "m\n"}, "second")
    work.git.push("-q", "origin", "main")
    src2 = fetch(src)
    assert src2.commit is not None and src2.commit.sha == second and src2.commit.subject == "second"
    assert (src2.path / "domains.yaml").read_text() == "v2\n"
    assert (src2.path / "more.yaml").exists()
    assert clone_count(caplog) == 1 and marker.exists()
    # The tree of the first commit is still complete (another reader may hold it).
    assert (src.path / "domains.yaml").read_text() == "v1\n"


def test_remote_default_cache_dir(tmp_path: Path, remote: tuple[Path, git.Repo]) -> None:
    bare, _ = remote
    src = resolve_source(str(bare))
    expected = default_cache_dir(str(bare.resolve()))
    assert expected.is_relative_to(tmp_path / "xdg-cache" / "mox-reconciler" / "sources")
    assert len(expected.name) == 16
    assert src.path.is_relative_to(expected)


def test_remote_refs(tmp_path: Path, remote: tuple[Path, git.Repo]) -> None:
    bare, work = remote
    first = work.head.commit.hexsha
    work.git.tag("-a", "v1", "-m", "release 1")
    work.git.checkout("-q", "-b", "feature")
    feature = commit(work, {"desired/domains.yaml": "feature\n"}, "feature work")
    work.git.checkout("-q", "main")
    main = commit(work, {"desired/domains.yaml": "v2\n"}, "second")
    work.git.push("-q", "origin", "main", "feature", "v1")
    cache = tmp_path / "cache"
    cases = {None: main, "main": main, "feature": feature, "refs/heads/feature": feature, "v1": first,
             "refs/tags/v1": first, first: first, first[:10]: first, "HEAD": main, "main~1": first,
             "feature^": first, "v1~0": first}
    for ref, sha in cases.items():
        src = resolve_source(str(bare), ref=ref, cache_dir=cache)
        assert src.commit is not None and src.commit.sha == sha, ref
        assert src.ref == ref
    feat = resolve_source(str(bare), ref="feature", cache_dir=cache)
    assert (feat.path / "desired/domains.yaml").read_text() == "feature\n"
    # fetch keeps the ref: a new commit on feature is seen, main's is not taken.
    work.git.checkout("-q", "feature")
    feature2 = commit(work, {"desired/domains.yaml": "feature 2\n"}, "feature 2")
    work.git.push("-q", "origin", "feature")
    again = fetch(feat)
    assert again.ref == "feature" and again.commit is not None and again.commit.sha == feature2


def test_remote_unknown_ref_and_missing_repo(tmp_path: Path, remote: tuple[Path, git.Repo]) -> None:
    bare, _ = remote
    with pytest.raises(SourceError, match="unknown ref 'nope'"):
        resolve_source(str(bare), ref="nope", cache_dir=tmp_path / "c1")
    with pytest.raises(SourceError, match="unknown ref"):
        resolve_source(str(bare), ref="0" * 40, cache_dir=tmp_path / "c1")
    with pytest.raises(SourceError, match="fetch failed") as e:
        resolve_source(str(tmp_path / "missing.git"), cache_dir=tmp_path / "c2")
    assert "\n" not in str(e.value)


def test_remote_missing_subdir(tmp_path: Path, remote: tuple[Path, git.Repo]) -> None:
    bare, _ = remote
    with pytest.raises(SourceError, match="directory 'absent' does not exist at commit"):
        resolve_source(str(bare), subdir="absent", cache_dir=tmp_path / "c")


def test_cache_of_another_repository_refused(tmp_path: Path, remote: tuple[Path, git.Repo]) -> None:
    bare, _ = remote
    other = tmp_path / "other.git"
    shutil.copytree(bare, other)
    cache = tmp_path / "cache"
    resolve_source(str(bare), cache_dir=cache)
    with pytest.raises(SourceError, match="holds a clone of"):
        resolve_source(str(other), cache_dir=cache)


def test_materialize_older_ref(tmp_path: Path, checkout: git.Repo, remote: tuple[Path, git.Repo]) -> None:
    root = Path(checkout.working_tree_dir or "")
    old = checkout.head.commit.hexsha
    commit(checkout, {"desired/domains.yaml": "v2\n", "desired/added.yaml": "a\n"}, "second")
    src = resolve_source(str(root / "desired"))
    with materialize(src, old) as path:
        assert (path / "domains.yaml").read_text() == "v1\n"
        assert not (path / "added.yaml").exists()
        assert path.name == "desired"
        tmp = path.parent
    assert not tmp.exists()
    assert (root / "desired/domains.yaml").read_text() == "v2\n"
    # From a string, and from a remote source.
    with materialize(str(root), "HEAD~1") as path:
        assert (path / "desired/domains.yaml").read_text() == "v1\n"
    bare, work = remote
    first = work.head.commit.hexsha
    commit(work, {"desired/domains.yaml": "v2\n"}, "second")
    work.git.push("-q", "origin", "main")
    rsrc = resolve_source(str(bare), subdir="desired", cache_dir=tmp_path / "c")
    for ref in (first, first[:7], "main~1", "HEAD~1", "HEAD^"):
        with materialize(rsrc, ref) as path:
            assert (path / "domains.yaml").read_text() == "v1\n", ref
    with materialize(rsrc, "HEAD") as path:
        assert (path / "domains.yaml").read_text() == "v2\n"
    with pytest.raises(SourceError, match="unknown ref 'main~5'"), materialize(rsrc, "main~5"):
        pass
    with pytest.raises(SourceError, match="unknown ref"), materialize(rsrc, "nope"):
        pass


def test_materialize_plain_directory_refused(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(SourceError, match="not in a git repository"), materialize(str(tmp_path / "plain"), "main"):
        pass


def test_concurrent_first_clones(tmp_path: Path, remote: tuple[Path, git.Repo]) -> None:
    """Two processes resolving the same remote with an empty cache: the lock serialises the clone."""
    bare, work = remote
    cache = tmp_path / "cache"
    code = ("import sys; from pathlib import Path; from reconciler.desired.source import resolve_source; "
            "print(resolve_source(sys.argv[1], cache_dir=Path(sys.argv[2])).commit.sha)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(bare), str(cache)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == work.head.commit.hexsha


# --- redaction --------------------------------------------------------------------------------


def test_redact_urls() -> None:
    assert redact("https://user:secret@example.com/repo.git") == "https://***@example.com/repo.git"
    assert redact("fatal: unable to access 'https://tok3n@example.com/r/': x") == \
        "fatal: unable to access 'https://***@example.com/r/': x"
    assert redact("https://u:p@ss@example.com/x") == "https://***@example.com/x"
    assert redact("ssh://git@example.com/r.git") == "ssh://git@example.com/r.git"
    assert redact("ssh://git:pw@example.com/r.git") == "ssh://***@example.com/r.git"
    assert redact("https://example.com/r.git?private_token=abc&x=1") == "https://example.com/r.git?private_token=***&x=1"
    assert redact("see https://example.com/a and mail me@example.com") == \
        "see https://example.com/a and mail me@example.com"


def test_redact_secret_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_PASSWORD", "hunter2-pass")
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-a/b+c")
    monkeypatch.setenv("HOME_DIRISH", "notasecret")
    monkeypatch.setenv("SHORT_TOKEN", "abc")
    text = "pw hunter2-pass tok glpat-a/b+c url https://x:glpat-a%2Fb%2Bc@h/ keep notasecret abc"
    assert redact(text) == "pw *** tok *** url https://***@h/ keep notasecret abc"
    assert redact("at git.example.com/glpat-a%2Fb%2Bc/x") == "at git.example.com/***/x"


def test_clone_failure_hides_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Port 1 on localhost refuses connections: no network needed. Every log line (GitPython's
    debug logging included) and the error message are free of the token."""
    monkeypatch.setenv("GIT_TOKEN", "tok-9f8e7d")
    caplog.set_level(logging.DEBUG)
    url = "https://user:secret-pw@127.0.0.1:1/path/tok-9f8e7d/repo.git"
    with pytest.raises(SourceError) as e:
        resolve_source(url, cache_dir=tmp_path / "cache")
    msg = str(e.value)
    assert "secret-pw" not in msg and "tok-9f8e7d" not in msg
    assert msg.startswith("https://***@127.0.0.1:1/path/***/repo.git: fetch failed: ")
    assert "\n" not in msg
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "secret-pw" not in logged and "tok-9f8e7d" not in logged


def test_https_url_with_credentials_end_to_end(
    tmp_path: Path, remote: tuple[Path, git.Repo], caplog: pytest.LogCaptureFixture
) -> None:
    """An https URL with a token, rewritten by git's url.insteadOf to the local bare repo: the
    clone works, and the token is in no field, repr, JSON or log line; a rotated token reuses the
    same cache (keyed by the redacted URL) and replaces the stored URL."""
    bare, work = remote
    with open(os.environ["GIT_CONFIG_GLOBAL"], "a") as fh:
        fh.write(f'[url "{bare}"]\n\tinsteadOf = https://git.example.org/desired.git\n')
        fh.write(f'[url "{bare}"]\n\tinsteadOf = https://ci:tok-old-1234@git.example.org/desired.git\n')
        fh.write(f'[url "{bare}"]\n\tinsteadOf = https://ci:tok-new-5678@git.example.org/desired.git\n')
    caplog.set_level(logging.DEBUG)
    src = resolve_source("https://ci:tok-old-1234@git.example.org/desired.git")
    assert src.location == "https://***@git.example.org/desired.git"
    assert src.commit is not None and src.commit.sha == work.head.commit.hexsha
    cache = default_cache_dir("https://***@git.example.org/desired.git")
    assert src.path.is_relative_to(cache)
    shown = repr(src) + str(src.to_json()) + src.describe() + "\n".join(r.getMessage() for r in caplog.records)
    assert "tok-old-1234" not in shown
    rotated = resolve_source("https://ci:tok-new-5678@git.example.org/desired.git")
    assert rotated.path.is_relative_to(cache) and clone_count(caplog) == 1
    with git.Repo(cache / "repo.git") as cached:
        assert cached.remotes.origin.url == "https://ci:tok-new-5678@git.example.org/desired.git"


def test_cached_trees_are_pruned(tmp_path: Path, remote: tuple[Path, git.Repo]) -> None:
    from reconciler.desired.source import KEEP_TREES

    bare, work = remote
    cache = tmp_path / "cache"
    for i in range(KEEP_TREES + 3):
        commit(work, {"desired/domains.yaml": f"v{i}\n"}, f"commit {i}")
        work.git.push("-q", "origin", "main")
        src = resolve_source(str(bare), cache_dir=cache)
        assert (src.path / "desired/domains.yaml").read_text() == f"v{i}\n"
    trees = [p for p in (cache / "trees").iterdir()]
    assert len(trees) == KEEP_TREES
    assert src.path in trees


def test_symlink_out_of_the_tree_refused(tmp_path: Path, checkout: git.Repo) -> None:
    root = Path(checkout.working_tree_dir or "")
    (root / "desired" / "passwd.yaml").symlink_to("/etc/passwd")
    checkout.git.add("-A")
    checkout.git.commit("-q", "-m", "evil link")
    link = "desired/passwd.yaml is a symbolic link at commit"
    with pytest.raises(SourceError, match=link):
        resolve_source(str(root / "desired"), ref="HEAD", cache_dir=tmp_path / "c")
    with pytest.raises(SourceError, match=link):
        resolve_source(str(root), subdir="desired", ref="HEAD", cache_dir=tmp_path / "c")
    (root / "desired" / "passwd.yaml").unlink()  # uncommitted: the work tree is clean of links now
    src = resolve_source(str(root / "desired"))
    with pytest.raises(SourceError, match=link), materialize(src, "HEAD"):
        pass
    (root / "desired" / "passwd.yaml").symlink_to("/etc/passwd")
    with pytest.raises(SourceError, match=r"passwd\.yaml is a symbolic link"):  # the work tree too
        resolve_source(str(root / "desired"))
    # Elsewhere in the repository a link is not part of the desired state: never extracted.
    whole = resolve_source(str(root), ref="HEAD", cache_dir=tmp_path / "c")
    assert not os.path.lexists(whole.path / "desired" / "passwd.yaml")


# --- signatures -------------------------------------------------------------------------------


@pytest.fixture
def ssh_keys(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two ed25519 keys; an allowed signers file that lists only the first."""
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed (apt-get install openssh-client)")
    keys = tmp_path / "keys"
    keys.mkdir()
    for name in ("good", "other"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(keys / name)],
                       check=True)
    allowed = keys / "allowed_signers"
    allowed.write_text(f"author@example.org {(keys / 'good.pub').read_text()}")
    return keys / "good", keys / "other", allowed


def signing_repo(path: Path, key: Path) -> git.Repo:
    repo = init_repo(path)
    with repo.config_writer() as cw:
        cw.set_value("gpg", "format", "ssh")
        cw.set_value("user", "signingkey", str(key))
    return repo


def test_require_signed_commits(tmp_path: Path, ssh_keys: tuple[Path, Path, Path]) -> None:
    good, other, allowed = ssh_keys
    root = tmp_path / "signed"
    with signing_repo(root, good) as repo:
        signed_sha = commit(repo, {"desired/a.yaml": "1\n"}, "signed by the good key", "-S")
        src = resolve_source(str(root), require_signed=True, allowed_signers=allowed)
        assert src.commit is not None and src.commit.sha == signed_sha and src.commit.signed is True
        assert src.commit.to_json()["signed"] is True
        # Without the requirement nothing is checked.
        plain = resolve_source(str(root))
        assert plain.commit is not None and plain.commit.signed is None

        unsigned = commit(repo, {"desired/a.yaml": "2\n"}, "not signed")
        with pytest.raises(SourceError, match=rf"commit {unsigned[:12]} \('not signed'\) is not signed"):
            resolve_source(str(root), require_signed=True, allowed_signers=allowed)

        with repo.config_writer() as cw:
            cw.set_value("user", "signingkey", str(other))
        stranger = commit(repo, {"desired/a.yaml": "3\n"}, "signed by a stranger", "-S")
        with pytest.raises(SourceError, match=rf"commit {stranger[:12]} .* not allowed .*key SHA256:"):
            resolve_source(str(root), require_signed=True, allowed_signers=allowed)

        # An older ref that is signed is accepted; the missing file is a clear error.
        ok = resolve_source(str(root), ref=signed_sha, require_signed=True, allowed_signers=allowed,
                            cache_dir=tmp_path / "c")
        assert ok.commit is not None and ok.commit.signed is True
        with pytest.raises(SourceError, match=r"allowed signers file .*: no such file"):
            resolve_source(str(root), require_signed=True, allowed_signers=tmp_path / "nope")


def test_require_signed_reads_only_the_verified_commit(tmp_path: Path, ssh_keys: tuple[Path, Path, Path]) -> None:
    """Modified, untracked and git-ignored files are not what the signature covers: the desired
    state is read from the verified commit's tree, never from the work tree."""
    good, _, allowed = ssh_keys
    root = tmp_path / "signed"
    with signing_repo(root, good) as repo:
        signed = commit(repo, {"a.yaml": "1\n", ".gitignore": "ignored.yaml\n"}, "signed", "-S")
        write(root, {"a.yaml": "edited\n", "untracked.yaml": "u\n", "ignored.yaml": "i\n"})
        src = resolve_source(str(root), require_signed=True, allowed_signers=allowed, cache_dir=tmp_path / "c")
        assert src.commit is not None and src.commit.sha == signed and not src.dirty
        assert sorted(p.name for p in src.path.iterdir()) == [".gitignore", "a.yaml"]
        assert (src.path / "a.yaml").read_text() == "1\n"
        assert not src.path.is_relative_to(root)

        # A link in a signed commit leads to content nobody signed: refused, naming it.
        (tmp_path / "unsigned.yaml").write_text("Domains: {}\n")
        (root / "b.yaml").symlink_to(tmp_path / "unsigned.yaml")
        linked = commit(repo, {}, "signed link", "-S")
        with pytest.raises(SourceError, match=rf"b.yaml is a symbolic link at commit {linked[:12]}"):
            resolve_source(str(root), require_signed=True, allowed_signers=allowed, cache_dir=tmp_path / "c")


def test_require_signed_remote(tmp_path: Path, ssh_keys: tuple[Path, Path, Path]) -> None:
    good, _, allowed = ssh_keys
    bare = tmp_path / "server.git"
    git.Repo.init(bare, bare=True, mkdir=True, initial_branch="main").close()
    with signing_repo(tmp_path / "work", good) as work:
        work.create_remote("origin", str(bare))
        signed_sha = commit(work, {"a.yaml": "1\n"}, "signed", "-S")
        work.git.push("-q", "origin", "main")
        src = resolve_source(str(bare), require_signed=True, allowed_signers=allowed, cache_dir=tmp_path / "c")
        assert src.commit is not None and src.commit.sha == signed_sha and src.commit.signed is True
        commit(work, {"a.yaml": "2\n"}, "unsigned")
        work.git.push("-q", "origin", "main")
        with pytest.raises(SourceError, match="is not signed"):
            fetch(src)
