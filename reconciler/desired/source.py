"""Where the desired state comes from: a plain directory, a git checkout, or a remote git repository.

A remote is cloned once (bare) into a cache directory and fetched on every later resolve; the tree
of the resolved commit is extracted into the cache under its SHA, so readers never see a
half-updated tree and nothing touches a user's work tree. The resolved commit (SHA, author, date,
subject) is carried on `Source` so plans, reports and logs can name it. Signature checks go
through `git verify-commit`, as Flux does: only the commit that is applied is checked.

Credentials never reach output: URLs are written into the cache repository's config directly (no
command line carries them, so no debug log of a command can show them), and every message built
from git's stderr or a location goes through `redact`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import re
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from reconciler.desired.cache import ParseCache, default_root
from reconciler.desired.fleet import relative_dir
from reconciler.desired.gitcmd import Git, GitFailed
from reconciler.desired.includes import desired_files
from reconciler.errors import SourceError

log = logging.getLogger(__name__)

__all__ = [
    "SECRET_ENV_WORDS",
    "Commit",
    "Source",
    "default_cache_dir",
    "fetch",
    "materialize",
    "materialize_source",
    "redact",
    "resolve_source",
]

# Environment variables whose names contain one of these words hold secrets (GIT_PASSWORD,
# GITHUB_TOKEN, GITLAB_TOKEN, CI_JOB_TOKEN, GH_TOKEN, MOX_GIT_SECRET, ...); their values are
# removed from every message. Values shorter than MIN_SECRET_LEN are left alone: replacing "1"
# everywhere would garble messages without protecting anything.
SECRET_ENV_WORDS = ("TOKEN", "PASSWORD", "PASSWD", "SECRET", "CREDENTIAL")
MIN_SECRET_LEN = 4

# How long a clone or fetch may take, and how long to wait for another process's clone/fetch.
NETWORK_TIMEOUT = 600.0
LOCK_TIMEOUT = 900.0
# Extracted trees kept per cache directory (most recently used first).
KEEP_TREES = 4

_ENV = {"GIT_TERMINAL_PROMPT": "0"}  # never block on a credentials prompt
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s?#]*)@")
_QUERY_SECRET = re.compile(r"(?i)([?&](?:access_token|private_token|token|password)=)[^&#\s]*")
_SCP_LIKE = re.compile(r"^[\w.+-]+@[\w.-]+:(?!//)")
_HEX = re.compile(r"^[0-9a-fA-F]{4,40}$")
_ANCESTRY = re.compile(r"^(.+?)((?:[~^][0-9]*)+)$")  # main~2, v1^, HEAD~1^2


@dataclass(frozen=True)
class Commit:
    """The commit a desired state was read from, as plans, reports and logs name it."""

    sha: str
    author: str  # "Name <email>"
    date: str  # author date, ISO 8601 with offset
    subject: str
    signed: bool | None = None  # True: signature verified; None: not checked

    def to_json(self) -> dict[str, object]:
        return {"sha": self.sha, "author": self.author, "date": self.date, "subject": self.subject,
                "signed": self.signed}

    def short(self) -> str:
        return f"{self.sha[:7]} {self.subject}"


@dataclass(frozen=True)
class _Request:
    """The arguments of a resolve, kept (unredacted, out of repr) so `fetch` can repeat it."""

    source: str
    ref: str | None
    cache_dir: Path | None
    subdir: str | None
    require_signed: bool
    allowed_signers: Path | None


@dataclass(frozen=True)
class Source:
    """A resolved source: the directory to load desired state from, and the commit it is at."""

    location: str  # for display: redacted URL or absolute path
    path: Path  # directory holding the desired-state files
    commit: Commit | None  # None for a plain directory
    dirty: bool  # a local checkout with uncommitted (or untracked) changes under `path`
    ref: str | None = None  # the ref asked for (None: HEAD of the checkout / the remote's default)
    remote: bool = False  # True: `repo_dir` is a bare clone in the cache
    repo_dir: Path | None = None  # work tree root (local) or bare cache clone (remote); None: plain dir
    subdir: str = ""  # `path` relative to the repository root, POSIX form ("" = root)
    # What `Include:` paths may not leave: the repository's tree (work tree or extracted commit),
    # or SOURCE itself when it is not in git. None: `path` (or its directory).
    root: Path | None = None
    _request: _Request | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, object]:
        return {"location": self.location, "ref": self.ref, "subdir": self.subdir,
                "commit": self.commit.to_json() if self.commit else None, "dirty": self.dirty}

    def describe(self) -> str:
        """One line for logs: location, ref and commit."""
        at = f" ({self.ref})" if self.ref else ""
        sub = f" //{self.subdir}" if self.subdir else ""
        if self.commit is None:
            return f"{self.location}{sub} (not in git)"
        dirty = " + uncommitted changes" if self.dirty else ""
        return f"{self.location}{sub}{at} at {self.commit.short()}{dirty}"


# ---------------------------------------------------------------------------------------------
# Redaction


def _secret_values() -> list[str]:
    values: set[str] = set()
    for name, value in os.environ.items():
        if len(value) >= MIN_SECRET_LEN and any(w in name.upper() for w in SECRET_ENV_WORDS):
            values.add(value)
            values.add(quote(value, safe=""))  # as it appears inside a URL
    return sorted(values, key=len, reverse=True)


def _redact_userinfo(m: re.Match[str]) -> str:
    scheme, userinfo = m.group(1), m.group(2)
    # A bare user name in an ssh URL (ssh://git@host) is not a secret and helps to read the URL.
    if scheme.lower() in ("ssh://", "git+ssh://", "ssh+git://") and ":" not in userinfo:
        return m.group(0)
    return f"{scheme}***@"


def redact(text: str) -> str:
    """Remove credentials: URL user info (`https://u:p@h` → `https://***@h`), token query
    parameters, and the values of secret environment variables (see SECRET_ENV_WORDS)."""
    text = _URL_USERINFO.sub(_redact_userinfo, text)
    text = _QUERY_SECRET.sub(r"\1***", text)
    for value in _secret_values():
        text = text.replace(value, "***")
    return text


# ---------------------------------------------------------------------------------------------
# Running git


_DUBIOUS = re.compile(r"detected dubious ownership in repository at '([^']*)'")


def _git_message(e: Exception) -> str:
    """git's own error lines from a failed command, redacted, on one line; for git's refusal of a
    repository another user owns, what to do about it."""
    if isinstance(e, GitFailed):
        raw = e.stderr.strip()
        lines = [ln.strip() for ln in raw.splitlines() if ln.strip()]
        important = [ln for ln in lines if ln.startswith(("fatal:", "error:"))] or lines
        text = "; ".join(important) or f"git exited with status {e.status}"
        dubious = _DUBIOUS.search(raw)
        if dubious:
            text = _dubious_message(Path(dubious.group(1)))
    elif isinstance(e, BrokenPipeError):
        text = "git exited before reading its input (run with --debug to see git's command)"
    else:
        text = str(e)
    return redact(text)


def _dubious_message(path: Path) -> str:
    """git's safe.directory refusal, with who owns what and the remedy."""
    try:
        owner = f"uid {os.stat(path).st_uid}"
    except OSError:
        owner = "another user"
    return (f"git refuses the repository {path}: it belongs to {owner} and this process runs as uid "
            f"{os.geteuid()} (git's safe.directory check against repositories of other users). If you "
            f"trust it, run as this user: git config --global --add safe.directory {path} (the container "
            "image trusts /desired in /etc/gitconfig), or run as the repository's owner")


def _run(repo: Any, *args: str, what: str, timeout: float | None = None) -> str:
    """Run `git ARGS` in `repo`; a failure becomes a SourceError `what: git's message`."""
    try:
        out = repo.git.execute(["git", *args], env=_ENV, kill_after_timeout=timeout)
    except (GitFailed, OSError) as e:
        raise SourceError(f"{what}: {_git_message(e)}") from None
    return str(out)


def _open_repo(path: Path, what: str) -> _LocalRepo:
    import git

    try:
        git.Repo(path).close()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise SourceError(f"{what}: not a git repository") from None
    except git.GitError as e:
        raise SourceError(f"{what}: {_git_message(e)}") from None
    return _LocalRepo(path)


# ---------------------------------------------------------------------------------------------
# Classifying SOURCE


def _is_bare_repo(path: Path) -> bool:
    if not path.is_dir() or not (path / "HEAD").is_file():
        return False
    import git

    try:
        with git.Repo(path) as repo:
            return bool(repo.bare)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return False


def _is_remote(source: str) -> bool:
    """URLs, scp-like `git@host:path`, and paths of bare repositories are remotes."""
    if "://" in source or _SCP_LIKE.match(source):
        return True
    path = Path(source).expanduser()
    if source.endswith(".git") and not path.exists():
        return True  # reported as a clone failure naming the path
    return _is_bare_repo(path)


def _clean_subdir(subdir: str | None) -> str:
    return relative_dir(subdir, "subdir", SourceError) if subdir else ""


def _check_ref_syntax(ref: str) -> None:
    if not ref or ref.startswith("-") or any(c.isspace() or ord(c) < 32 for c in ref):
        raise SourceError(f"invalid ref {ref!r}")


def default_cache_dir(key: str) -> Path:
    """$XDG_CACHE_HOME/mox-reconciler/sources/<first 16 hex of sha256(key)>, key a redacted URL."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "mox-reconciler" / "sources" / hashlib.sha256(key.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _cache_lock(cache_dir: Path, location: str) -> Iterator[None]:
    """One process at a time clones, fetches or extracts into a cache directory."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as e:
        raise SourceError(f"cache directory {cache_dir}: {e.strerror}") from None
    import filelock

    lock = filelock.FileLock(str(cache_dir / ".lock"), timeout=LOCK_TIMEOUT)
    try:
        with lock:
            yield
    except filelock.Timeout:
        raise SourceError(
            f"{location}: another process holds the source cache lock {cache_dir / '.lock'}"
        ) from None


# ---------------------------------------------------------------------------------------------
# Commits, refs and signatures


def _commit_info(repo: Any, sha: str, location: str = "") -> Commit:
    """The commit's id, author, date and subject, from one `git show` (not GitPython's object
    database, whose long-running `git cat-file` child fails as a broken pipe)."""
    out = _run(repo, "show", "-s", "--no-show-signature", "--format=%H%x00%an%x00%ae%x00%aI%x00%B", sha,
               what=f"{location or 'source'}: cannot read commit {sha[:12]}")
    full, name, email, date, message = (out.lstrip("\n") + "\0" * 4).split("\0")[:5]
    return Commit(sha=full.strip(), author=f"{name} <{email}>", date=date, subject=message.strip().split("\n", 1)[0])


def _rev_parse(repo: Any, name: str) -> str | None:
    try:
        out = repo.git.execute(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], env=_ENV)
    except GitFailed:
        return None
    return str(out).strip() or None


def _remote_name(repo: Any, name: str, head: str | None) -> str | None:
    """A name in a cache clone: HEAD (the source's commit), a branch of the remote, a tag, a SHA."""
    if name == "HEAD":
        return head
    if name.startswith("refs/heads/"):
        candidates = ["refs/remotes/origin/" + name.removeprefix("refs/heads/")]
    elif name.startswith("refs/"):
        candidates = [name]
    else:
        candidates = [f"refs/remotes/origin/{name}", f"refs/tags/{name}"]
        if _HEX.match(name):
            candidates.append(name)
    for candidate in candidates:
        sha = _rev_parse(repo, candidate)
        if sha:
            return sha
    if re.fullmatch(r"[0-9a-fA-F]{40}", name):
        # A commit no branch or tag reaches: ask the server for it.
        with contextlib.suppress(SourceError):
            _run(repo, "fetch", "--no-write-fetch-head", "origin", name, what="fetch",
                 timeout=NETWORK_TIMEOUT)
            return _rev_parse(repo, name)
    return None


def _resolve_ref(repo: Any, ref: str, *, remote: bool, location: str, head: str | None = None) -> str:
    """The commit SHA of `ref`. In a cache clone: a branch of the remote, a tag or a SHA, with
    optional `~N`/`^N` suffixes (HEAD = `head`, the source's commit); in a local checkout anything
    git accepts, then `origin/<ref>` (CI checkouts lack local branches)."""
    _check_ref_syntax(ref)
    sha: str | None
    if remote:
        m = _ANCESTRY.match(ref)
        base, suffix = (m.group(1), m.group(2)) if m else (ref, "")
        sha = _remote_name(repo, base, head)
        if sha and suffix:
            sha = _rev_parse(repo, sha + suffix)
        if sha:
            return sha
    else:
        for name in (ref, f"refs/remotes/origin/{ref}"):
            sha = _rev_parse(repo, name)
            if sha:
                return sha
    raise SourceError(f"{location}: unknown ref {ref!r} (no such branch, tag or commit)")


_SIGNATURE_PROBLEMS = {
    "N": "is not signed",
    "B": "has a bad signature",
    "U": "is signed by a key that is not allowed (not in the allowed signers file, or not trusted)",
    "X": "has an expired signature",
    "Y": "is signed by an expired key",
    "R": "is signed by a revoked key",
    "E": "has a signature that cannot be checked (unknown key, or no allowed signers file)",
}


def _verify_signature(repo: Any, commit: Commit, allowed_signers: Path | None, location: str) -> Commit:
    """`git verify-commit` decides, as for `git merge --verify-signatures`: GPG signatures against
    the GnuPG keyring, SSH signatures against `allowed_signers`."""
    config: list[str] = []
    if allowed_signers is not None:
        if not allowed_signers.is_file():
            raise SourceError(f"allowed signers file {allowed_signers}: no such file")
        config = ["-c", f"gpg.ssh.allowedSignersFile={allowed_signers.resolve()}"]
    status = repo.git.execute(
        ["git", *config, "verify-commit", "--raw", commit.sha],
        env=_ENV, with_exceptions=False, with_extended_output=True,
    )[0]
    if status == 0:
        return replace(commit, signed=True)
    fmt = "%G?%x00%GK%x00%GS"
    code, key, signer = (str(repo.git.execute(["git", *config, "show", "-s", f"--format={fmt}", commit.sha],
                                              env=_ENV, with_exceptions=False)) + "\0\0").split("\0")[:3]
    problem = _SIGNATURE_PROBLEMS.get(code.strip(), "has a signature that does not verify")
    if key:
        problem += f" (key {key}{', signer ' + signer if signer else ''})"
    raise SourceError(
        f"{location}: commit {commit.sha[:12]} ({commit.subject!r}) {problem}; "
        "refusing it because signed commits are required"
    )


# ---------------------------------------------------------------------------------------------
# Trees


def _plain_files(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """Extract regular files and directories only (tarfile's "data" filter: no absolute or
    escaping names, no device files); links are left out, so nothing read from a tree can lead
    outside it. The desired state's own links are refused before (`_refuse_links`)."""
    if member.issym() or member.islnk():
        return None
    return tarfile.data_filter(member, dest)


def _extract(repo: Any, sha: str, dest: Path, location: str) -> None:
    """Write the tree of `sha` into the existing directory `dest` (git archive | tar, plain
    files and directories only)."""
    try:
        proc = repo.git.execute(["git", "archive", "--format=tar", sha], env=_ENV, as_process=True)
    except GitFailed as e:
        raise SourceError(f"{location}: {_git_message(e)}") from None
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            tar.extractall(dest, filter=_plain_files)
    except (tarfile.TarError, OSError) as e:
        proc.proc.kill()
        with contextlib.suppress(GitFailed):
            proc.wait()
        raise SourceError(f"{location}: cannot extract commit {sha[:12]}: {e}") from None
    try:
        proc.wait()
    except GitFailed as e:
        raise SourceError(f"{location}: {_git_message(e)}") from None


def _cached_tree(repo: Any, sha: str, cache_dir: Path, location: str) -> Path:
    """The tree of `sha` under cache_dir/trees/<sha>, extracted once; the caller holds the lock.
    Trees are written to a temporary name and renamed, so a tree directory is always complete."""
    trees = cache_dir / "trees"
    trees.mkdir(exist_ok=True)
    dest = trees / sha
    if not dest.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=trees, prefix=".tmp-"))
        try:
            _extract(repo, sha, tmp, location)
            tmp.rename(dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    os.utime(dest)
    old = sorted((p for p in trees.iterdir() if p.is_dir() and p != dest and not p.name.startswith(".")),
                 key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in old[KEEP_TREES - 1:]:
        shutil.rmtree(stale, ignore_errors=True)
    return dest


_LINK_MODE = "120000"  # a symbolic link in a git tree
_DESIRED_SUFFIXES = (".yaml", ".yml")


def _link_problem(location: str, name: str, where: str) -> SourceError:
    return SourceError(f"{location}: {name} is a symbolic link{where}; the desired state must be plain files "
                       "inside the source (a link could lead anywhere on this machine), so nothing is read: "
                       "replace the link with the file itself")


def _refuse_links(repo: Any, sha: str, subdir: str, location: str) -> None:
    """A link on the way to the desired-state directory (`subdir` or a directory above it), or a
    `*.yaml`/`*.yml` link in it, at commit `sha` is an error naming it."""
    parts = PurePosixPath(subdir).parts if subdir else ()
    ways = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    paths = ["--", *ways, f"{subdir}/"] if subdir else []
    listing = _run(repo, "ls-tree", "-z", "--full-tree", sha, *paths, what=f"{location}: cannot list commit {sha[:12]}")
    for entry in filter(None, listing.split("\0")):
        meta, _, name = entry.partition("\t")
        if meta.split(" ", 1)[0] != _LINK_MODE:
            continue
        if name in ways or (PurePosixPath(name).suffix in _DESIRED_SUFFIXES
                            and str(PurePosixPath(name).parent) == (subdir or ".")):
            raise _link_problem(location, name, f" at commit {sha[:12]}")


def _refuse_links_on_disk(root: Path, rel: str, location: str) -> None:
    """The same rule for files on disk: no link from `root` down to `root/rel`, no `*.yaml` link in it."""
    path = root
    for part in PurePosixPath(rel).parts if rel else ():
        path = path / part
        if path.is_symlink():
            raise _link_problem(location, str(path), "")
    try:
        entries = list(os.scandir(path))
    except OSError:
        return  # reported as a missing directory by the caller
    for entry in entries:
        if entry.is_symlink() and PurePosixPath(entry.name).suffix in _DESIRED_SUFFIXES:
            raise _link_problem(location, str(path / entry.name), "")


def _inside(root: Path, subdir: str, commit: Commit, location: str) -> Path:
    path = root / subdir if subdir else root
    if not path.is_dir():
        raise SourceError(f"{location}: directory {subdir!r} does not exist at commit {commit.sha[:12]}")
    return path


# ---------------------------------------------------------------------------------------------
# Remote cache


def _without_userinfo(url: str) -> str:
    return _URL_USERINFO.sub(lambda m: m.group(1), url)


def _prepare_cache_repo(cache_dir: Path, url: str, location: str) -> _LocalRepo:
    """The bare clone in `cache_dir/repo.git`, created on first use, fetched on every call.
    The caller holds the cache lock."""
    import git

    gitdir = cache_dir / "repo.git"
    if not (gitdir / "HEAD").is_file():
        shutil.rmtree(gitdir, ignore_errors=True)  # a clone that died half-way
        with git.Repo.init(gitdir, bare=True) as repo, repo.config_writer() as cw:
            cw.set_value('remote "origin"', "url", url)
            cw.set_value('remote "origin"', "fetch", "+refs/heads/*:refs/remotes/origin/*")
            cw.add_value('remote "origin"', "fetch", "+refs/tags/*:refs/tags/*")
        log.info("source: cloning %s into %s", location, cache_dir)
    else:
        with git.Repo(gitdir) as repo:
            with repo.config_reader() as cr:
                stored = str(cr.get_value('remote "origin"', "url", ""))
            if stored != url:
                if _without_userinfo(stored) != _without_userinfo(url):
                    raise SourceError(
                        f"cache directory {cache_dir} holds a clone of {redact(stored)}, not {location}")
                with repo.config_writer() as cw:  # new credentials for the same repository
                    cw.set_value('remote "origin"', "url", url)
        log.debug("source: fetching %s", location)
    clone = _LocalRepo(gitdir)
    _run(clone, "fetch", "--prune", "--no-write-fetch-head", "origin",
         what=f"{location}: fetch failed", timeout=NETWORK_TIMEOUT)
    return clone


def _remote_default_branch(repo: Any, location: str) -> str:
    out = _run(repo, "ls-remote", "--symref", "origin", "HEAD",
               what=f"{location}: cannot read the default branch", timeout=NETWORK_TIMEOUT)
    for line in out.splitlines():
        if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
            return line.removeprefix("ref: refs/heads/").removesuffix("\tHEAD")
    raise SourceError(f"{location}: the remote has no default branch (HEAD); pass --ref")


def _resolve_remote(req: _Request, subdir: str) -> Source:
    url = req.source
    if url.startswith("-"):
        raise SourceError(f"invalid source {redact(url)!r}")
    if "://" not in url and not _SCP_LIKE.match(url):
        url = str(Path(url).expanduser().resolve())  # a bare repository given by path
    location = redact(url)
    cache_dir = req.cache_dir or default_cache_dir(location)
    with _cache_lock(cache_dir, location):
        repo = _prepare_cache_repo(cache_dir, url, location)
        with repo:
            ref = _remote_default_branch(repo, location) if req.ref in (None, "HEAD") else str(req.ref)
            sha = _resolve_ref(repo, ref, remote=True, location=location)
            commit = _commit_info(repo, sha, location)
            if req.require_signed:
                commit = _verify_signature(repo, commit, req.allowed_signers, location)
            _refuse_links(repo, sha, subdir, location)
            tree = _cached_tree(repo, sha, cache_dir, location)
    return Source(location=location, path=_inside(tree, subdir, commit, location), commit=commit,
                  dirty=False, ref=req.ref, remote=True, repo_dir=cache_dir / "repo.git", subdir=subdir,
                  root=tree, _request=req)


# ---------------------------------------------------------------------------------------------
# Local directories


class _LocalRepo:
    """A work tree (or a cache clone) the reconciler runs git in (as `repo.git.execute`, like a
    GitPython Repo: `reconciler.desired.gitcmd`).

    git refuses a repository another user owns (safe.directory). One owned by root through a
    path only root can change is trusted without that setting: root already controls what this
    process runs, so its repository cannot be used against it (mox's user reading root's checkout)."""

    def __init__(self, root: Path) -> None:
        config = ["-c", f"safe.directory={root}"] if _root_controlled(root) else []
        self.root = root
        self.git = Git(root, config)

    def __enter__(self) -> _LocalRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.git.clear_cache()


def _root_controlled(root: Path) -> bool:
    """Only root can change `root/.git`'s config: it, `.git` and every directory above are owned by
    root and not writable by others (or sticky, like /tmp). Never needed when we are root."""
    if os.geteuid() == 0:
        return False
    try:
        checks = [root / ".git" / "config", root / ".git", *[root, *root.parents]]
        for i, p in enumerate(checks):
            st = os.lstat(p)
            if st.st_uid != 0 or stat.S_ISLNK(st.st_mode):
                return False
            sticky_dir = i >= 2 and st.st_mode & stat.S_ISVTX
            if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_dir:
                return False
    except OSError:
        return False
    return True


def _work_tree_of(start: Path) -> Path | None:
    """The top of the git work tree `start` is in (the nearest directory with a `.git`), or None."""
    for d in (start, *start.parents):
        if os.path.lexists(d / ".git"):
            return d
    return None


def _head(repo: _LocalRepo, location: str) -> str | None:
    """The commit HEAD names, or None in a repository without commits; any other failure of git
    (a repository it refuses, a broken one) is an error, never taken as "not a checkout"."""
    status, out, err = repo.git.execute(["git", "rev-parse", "--verify", "--quiet", "HEAD^{commit}"], env=_ENV,
                                        with_exceptions=False, with_extended_output=True)
    if status == 0 and str(out).strip():
        return str(out).strip()
    if status == 1 and not str(err).strip():
        return None
    raise SourceError(f"{location}: {_git_message(GitFailed(['git', 'rev-parse'], status, err))}")


def _resolve_local(req: _Request, subdir: str) -> Source:
    start = Path(req.source).expanduser().resolve()
    location = str(start)
    if not start.is_dir():
        raise SourceError(f"{location}: no such directory")
    top = _work_tree_of(start)
    if top is None:
        if req.ref is not None or req.require_signed:
            raise SourceError(f"{location}: not in a git repository, so "
                              + ("--ref" if req.ref is not None else "signature checks") + " cannot apply")
        path = start / subdir if subdir else start
        _refuse_links_on_disk(start, subdir, location)
        if not path.is_dir():
            raise SourceError(f"{path}: no such directory")
        return Source(location=location, path=path, commit=None, dirty=False, subdir=subdir, root=start,
                      _request=req)
    with _LocalRepo(top) as repo:
        shown = _run(repo, "rev-parse", "--show-toplevel", what=f"{location}: git cannot read the checkout {top}")
        root = Path(shown.strip()).resolve()
        rel = PurePosixPath(start.relative_to(root).as_posix()) / subdir if subdir else \
            PurePosixPath(start.relative_to(root).as_posix())
        rel_s = "" if str(rel) == "." else str(rel)
        if req.ref is not None:
            sha = _resolve_ref(repo, req.ref, remote=False, location=location)
        else:
            head = _head(repo, location)
            if head is None:  # no commit yet: the work tree as it is
                if req.require_signed:
                    raise SourceError(f"{location}: the repository has no commit to verify")
                _refuse_links_on_disk(root, rel_s, location)
                path = root / rel_s if rel_s else root
                return Source(location=location, path=path, commit=None, dirty=True, repo_dir=root,
                              subdir=rel_s, root=root, _request=req)
            sha = head
        commit = _commit_info(repo, sha, location)
        if req.require_signed:
            commit = _verify_signature(repo, commit, req.allowed_signers, location)
        if req.ref is not None or req.require_signed:
            # The files of that commit (for a signed one: only what the signature covers, never
            # untracked, ignored or modified files), from the cache; the user's tree is not touched.
            _refuse_links(repo, sha, rel_s, location)
            if req.require_signed and req.ref is None and _dirty(repo, rel_s, location):
                log.warning("source: %s: uncommitted changes under %s are not read: signed commits are required, "
                            "so the desired state is the verified commit's files", location, rel_s or ".")
            cache_dir = req.cache_dir or default_cache_dir(str(root))
            with _cache_lock(cache_dir, location):
                tree = _cached_tree(repo, sha, cache_dir, location)
            return Source(location=location, path=_inside(tree, rel_s, commit, location), commit=commit,
                          dirty=False, ref=req.ref, repo_dir=root, subdir=rel_s, root=tree, _request=req)
        _refuse_links_on_disk(root, rel_s, location)
        path = root / rel_s if rel_s else root
        if not path.is_dir():
            raise SourceError(f"{path}: no such directory")
        dirty = _dirty(repo, rel_s, location, includes_of=(path, root), cache_dir=req.cache_dir)
    return Source(location=location, path=path, commit=commit, dirty=dirty, repo_dir=root, subdir=rel_s,
                  root=root, _request=req)


def _dirty(repo: Any, rel: str, location: str, *, includes_of: tuple[Path, Path] | None = None,
           cache_dir: Path | None = None) -> bool:
    """Uncommitted (staged, modified or untracked) files under `rel`, or (`includes_of`: the
    desired-state directory and the work tree) in a file it includes from elsewhere. The files
    are read through the parse cache the plan then loads them from (`pipeline.Caches`, in
    `cache_dir`): an unchanged file is parsed by neither."""
    out = _run(repo, "status", "--porcelain", "--untracked-files=all", "--", rel or ".",
               what=f"{location}: git status failed")
    if out.strip() or includes_of is None or not rel:
        return bool(out.strip())
    path, root = includes_of
    cache = ParseCache(default_root(cache_dir), f"{location}//{rel}")
    files = desired_files(path, root, cache)
    cache.save()
    elsewhere = [f.relative_to(root).as_posix() for f in files if f.is_relative_to(root) and not f.is_relative_to(path)]
    if not elsewhere:
        return False
    out = _run(repo, "status", "--porcelain", "--untracked-files=all", "--", *elsewhere,
               what=f"{location}: git status failed")
    return bool(out.strip())


# ---------------------------------------------------------------------------------------------
# Public API


def resolve_source(
    source: str,
    *,
    ref: str | None = None,
    cache_dir: Path | None = None,
    subdir: str | None = None,
    require_signed: bool = False,
    allowed_signers: Path | None = None,
) -> Source:
    """Resolve SOURCE (directory, checkout, URL or bare repository) and `ref` to a directory of
    desired-state files and the commit it holds. Remotes are cloned into / fetched in `cache_dir`
    (default: `default_cache_dir(redacted URL)`); a `ref` of a local checkout is read from a cache
    too. With `require_signed`, a commit whose signature git does not verify is refused."""
    req = _Request(source, ref, cache_dir, subdir, require_signed, allowed_signers)
    sub = _clean_subdir(subdir)
    single = Path(source).expanduser()
    if not _is_remote(source) and not sub and single.is_file():
        # One desired-state file: resolve its directory (checkout, commit, ref), then point at it.
        resolved = _resolve_local(dataclasses.replace(req, source=str(single.parent)), sub)
        resolved = dataclasses.replace(resolved, location=str(single.resolve()), path=resolved.path / single.name)
        log.info("source: %s", resolved.describe())
        return resolved
    resolved = _resolve_remote(req, sub) if _is_remote(source) else _resolve_local(req, sub)
    log.info("source: %s", resolved.describe())
    return resolved


def fetch(source: Source) -> Source:
    """Resolve the same source again: a remote is fetched, a checkout re-read; same ref."""
    req = source._request
    if req is None:
        raise SourceError(f"{source.location}: not resolved by resolve_source, cannot fetch")
    return resolve_source(req.source, ref=req.ref, cache_dir=req.cache_dir, subdir=req.subdir,
                          require_signed=req.require_signed, allowed_signers=req.allowed_signers)


def _repo_of(source: Source) -> _LocalRepo:
    if source.repo_dir is None:
        raise SourceError(f"{source.location}: not in a git repository, so no other ref can be read")
    if not source.remote:
        return _LocalRepo(source.repo_dir)
    return _open_repo(source.repo_dir, source.location)


@contextlib.contextmanager
def _materialize(source: Source | str, ref: str) -> Iterator[Source]:
    src = resolve_source(source) if isinstance(source, str) else source
    tmp = Path(tempfile.mkdtemp(prefix="mox-reconciler-src-"))
    try:
        with _repo_of(src) as repo:
            head = src.commit.sha if src.commit else None
            sha = _resolve_ref(repo, ref, remote=src.remote, location=src.location, head=head)
            commit = _commit_info(repo, sha, src.location)
            _refuse_links(repo, sha, src.subdir, src.location)
            _extract(repo, sha, tmp, src.location)
        path = _inside(tmp, src.subdir, commit, src.location)
        if src.path.is_file():
            path = path / src.path.name
        yield replace(src, path=path, commit=commit, dirty=False, ref=ref, root=tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def materialize_source(source: Source | str, ref: str) -> contextlib.AbstractContextManager[Source]:
    """The source as it is at `ref` of its repository (same subdir, same file), its whole tree in a
    temporary directory removed on exit: `plan --base-ref` loads the base desired state (and what
    it includes) from it. The user's work tree is never touched."""
    return _materialize(source, ref)


@contextlib.contextmanager
def materialize(source: Source | str, ref: str) -> Iterator[Path]:
    """The directory of `materialize_source`: the files of `ref` (same subdir) in a temporary
    directory, removed on exit."""
    with _materialize(source, ref) as src:
        yield src.path if src.path.is_dir() else src.path.parent
