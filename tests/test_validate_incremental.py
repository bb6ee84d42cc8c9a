"""Validation against a known-good base (objects equal to the base's are not checked on their own
again) gives exactly the verdict and messages of a full validation, whatever changed: the
changed objects, objects that other changes break, key files, references between objects."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.mox import config as mc
from reconciler.mox.config import Dynamic, Static
from reconciler.mox.live import ConfigPaths, read_live
from reconciler.mox.validate import _Validator, dynamic_errors, key_file_errors, validate_dynamic

from .conftest import GOLDEN_STEPS, build_step_config

replace = dataclasses.replace
Mutation = Callable[[Dynamic, Path], Dynamic]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Static, Dynamic, Path]:
    """Step 13: 4 domains (IDN, disabled), RSA + Ed25519 selectors, alias, catchall, José."""
    (step,) = [s for s in GOLDEN_STEPS if s.name.startswith("13")]
    live = read_live(ConfigPaths(build_step_config(step, tmp_path_factory.mktemp("base"))))
    assert validate_dynamic(live.static, live.dynamic, live.paths.config_dir).errors == []
    return live.static, live.dynamic, live.paths.config_dir


def domain(name: str, **changes: object) -> Mutation:
    return lambda d, _c: replace(d, Domains={**d.Domains, name: replace(d.Domains[name], **changes)})


def account(name: str, **changes: object) -> Mutation:
    return lambda d, _c: replace(d, Accounts={**d.Accounts, name: replace(d.Accounts[name], **changes)})


def new_account(name: str, *addresses: str) -> Mutation:
    acc = mc.Account(Domain="example.org", Destinations={a: mc.Destination() for a in addresses})
    return lambda d, _c: replace(d, Accounts={**d.Accounts, name: acc})


def drop(kind: str, name: str) -> Mutation:
    return lambda d, _c: replace(d, **{kind: {k: v for k, v in getattr(d, kind).items() if k != name}})


def selector(dom: str, sel: str, **changes: object) -> Mutation:
    def mutate(d: Dynamic, _c: Path) -> Dynamic:
        conf = d.Domains[dom]
        sels = {**conf.DKIM.Selectors, sel: replace(conf.DKIM.Selectors[sel], **changes)}
        return domain(dom, DKIM=replace(conf.DKIM, Selectors=sels))(d, _c)
    return mutate


def key_file(dom: str, sel: str, content: bytes | None) -> Mutation:
    """The key file of an unchanged selector replaced (or removed): only the file changes."""
    def mutate(d: Dynamic, cdir: Path) -> Dynamic:
        path = cdir / d.Domains[dom].DKIM.Selectors[sel].PrivateKeyFile
        path.unlink()
        if content is not None:
            path.write_bytes(content)
        return d
    return mutate


def alias(dom: str, name: str, *members: str) -> Mutation:
    def mutate(d: Dynamic, c: Path) -> Dynamic:
        aliases = {**d.Domains[dom].Aliases, name: replace(d.Domains[dom].Aliases[name], Addresses=members)}
        return domain(dom, Aliases=aliases)(d, c)
    return mutate


def added_domain(name: str, like: str = "example.net", **changes: object) -> Mutation:
    """A domain added as a copy of `like` (its key files too: a new domain's are its own)."""
    return lambda d, _c: replace(d, Domains={**d.Domains, name: replace(d.Domains[like], **changes)})


def dmarc(localpart: str = "dmarcreports", domain: str = "", account: str = "admin") -> mc.DMARC:
    return mc.DMARC(Localpart=localpart, Domain=domain, Account=account, Mailbox="DMARC")


MUTATIONS: dict[str, Mutation] = {
    "nothing": lambda d, _c: d,
    "a domain's own field": domain("example.net", ClientSettingsDomain="bad domain!"),
    "a selector's expiration": selector("example.org", "2026a", Expiration="3 days"),
    "sha1 on an ed25519 selector": selector("example.org", "202611e", Hash="sha1"),
    "a domain that addresses use is removed": drop("Domains", "café.example"),
    "a separator that an unchanged address contains": domain("example.org", LocalpartCatchallSeparator="."),
    "case-sensitive localparts": domain("café.example", LocalpartCaseSensitive=True),
    "a new account takes an unchanged account's address (after it)": new_account("carol", "alice@example.org"),
    "a new account takes an unchanged account's address (before it)": new_account("aaron", "bob@example.org"),
    "a new account in an unknown domain": new_account("dave", "dave@nowhere.example"),
    "an account that reports and aliases need is removed": drop("Accounts", "alice"),
    "a reporting account that does not exist": domain("example.net", DMARC=mc.DMARC(
        Localpart="dmarc", Account="nobody", Mailbox="DMARC")),
    "an account's own field": account("bob", RejectsMailbox="Inbox"),
    "an account's junk regexp": account("bob", AutomaticJunkFlags=mc.AutomaticJunkFlags(
        Enabled=True, JunkMailboxRegexp="(?<=x)")),
    "a fromid address of another account": account("bob", FromIDLoginAddresses=("alice+x@example.org",)),
    "an alias member that does not exist": alias("example.org", "team", "alice@example.org", "nobody@example.org"),
    "a key file removed": key_file("example.net", "2026a", None),
    "a key file that is not PEM": key_file("café.example", "2026b", b"not a key\n"),
    # Domains added (a plan of new domains): `dynamic_errors` checks only those and the key files
    # when nothing else differs (`added_domains_only`), else everything.
    "a new domain": added_domain("new.example"),
    "a new domain before the others": added_domain("aaa.example", DMARC=dmarc(account="alice")),
    "a new domain with a bad selector": lambda d, c: selector("new.example", "2026a", Expiration="3 days")(
        added_domain("new.example")(d, c), c),
    "a new domain with a key file missing": lambda d, c: selector("new.example", "2026b", PrivateKeyFile="dkim/nope")(
        added_domain("new.example")(d, c), c),
    "a new domain reporting to an account that does not exist": added_domain(
        "new.example", DMARC=dmarc(account="nobody"), TLSRPT=mc.TLSRPT(Localpart="tls", Account="nobody2")),
    "a new domain with a bad reporting localpart": added_domain("new.example", DMARC=dmarc(localpart="a b")),
    "a new domain without an MTA-STS policy ID": added_domain("new.example", MTASTS=mc.MTASTS(Mode="enforce")),
    "a new domain spelled in upper case": added_domain("NEW.example"),
    "a new domain spelled as another one": added_domain("EXAMPLE.org", DMARC=dmarc(localpart="team")),
    "a new domain reporting into another domain's alias": added_domain(
        "new.example", DMARC=dmarc(localpart="team", domain="example.org")),
    "a new domain with an alias of an address that does not exist": lambda d, c: alias(
        "new.example", "team", "nobody@example.org")(added_domain("new.example", "example.org", DMARC=dmarc())(d, c), c),
    "an ed25519 key where the selector signs with sha1": lambda d, c: key_file(
        "example.org", "2026a", (c / d.Domains["example.org"].DKIM.Selectors["202611e"].PrivateKeyFile).read_bytes()
    )(selector("example.org", "2026a", Hash="sha1")(d, c), c),
}


ACCEPTED = ("nothing", "case-sensitive localparts", "a new domain", "a new domain before the others")


def verdicts(base: tuple[Static, Dynamic, Path], tmp_path: Path, mutations: list[Mutation]) -> tuple[list[str],
                                                                                                     list[str]]:
    static, dyn0, cdir0 = base
    cdir = tmp_path / "config"
    if cdir.exists():
        shutil.rmtree(cdir)
    shutil.copytree(cdir0, cdir)
    dyn = dyn0
    for mutate in mutations:
        with contextlib.suppress(KeyError):  # a change to what an earlier one removed: not applicable
            dyn = mutate(dyn, cdir)
    full = validate_dynamic(static, dyn, cdir).errors
    incremental = validate_dynamic(static, dyn, cdir, base=dyn0).errors
    assert dynamic_errors(static, dyn, cdir, base=dyn0) == full
    return full, incremental


@pytest.mark.parametrize("name", MUTATIONS)
def test_incremental_equals_full(name: str, base: tuple[Static, Dynamic, Path], tmp_path: Path) -> None:
    full, incremental = verdicts(base, tmp_path, [MUTATIONS[name]])
    assert incremental == full
    assert bool(full) == (name not in ACCEPTED)  # the others are all refused by mox


@settings(max_examples=30)
@given(names=st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=2, max_size=4, unique=True))
def test_incremental_equals_full_for_combined_changes(names: list[str], base: tuple[Static, Dynamic, Path],
                                                      tmp_path_factory: pytest.TempPathFactory) -> None:
    full, incremental = verdicts(base, tmp_path_factory.mktemp("combined"), [MUTATIONS[n] for n in names])
    assert incremental == full


def test_unchanged_objects_are_not_checked_alone(base: tuple[Static, Dynamic, Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With a base, a bad regexp hidden in an unchanged account would go unseen: proof that
    the account was not checked again (such a base is never valid; this only shows the skip)."""
    static, dyn0, cdir = base
    bad = replace(dyn0, Accounts={**dyn0.Accounts, "bob": replace(
        dyn0.Accounts["bob"], AutomaticJunkFlags=mc.AutomaticJunkFlags(Enabled=True, JunkMailboxRegexp="(?<=x)"))})
    assert validate_dynamic(static, bad, cdir).errors
    assert validate_dynamic(static, bad, cdir, base=bad).errors == []


# Changes of key files alone (the config is the one that validated): what an apply finds when it
# validates the plan's checked result again once the key files exist (`key_file_errors`).
FILE_ONLY: dict[str, Mutation] = {
    "nothing": MUTATIONS["nothing"],
    "a key file removed": MUTATIONS["a key file removed"],
    "a key file that is not PEM": MUTATIONS["a key file that is not PEM"],
    "an ed25519 key under an rsa selector": lambda d, c: key_file(
        "example.org", "2026a", (c / d.Domains["example.org"].DKIM.Selectors["202611e"].PrivateKeyFile).read_bytes()
    )(d, c),
    "a key file made a directory": lambda d, c: _made_directory(d, c, "example.net", "2026a"),
}


def _made_directory(d: Dynamic, cdir: Path, dom: str, sel: str) -> Dynamic:
    path = cdir / d.Domains[dom].DKIM.Selectors[sel].PrivateKeyFile
    path.unlink()
    path.mkdir()
    return d


@settings(max_examples=20)
@given(names=st.lists(st.sampled_from(sorted(FILE_ONLY)), min_size=1, max_size=3, unique=True))
def test_key_file_errors_equal_full_validation_of_a_checked_config(
        names: list[str], base: tuple[Static, Dynamic, Path], tmp_path_factory: pytest.TempPathFactory) -> None:
    static, dyn0, cdir0 = base
    cdir = tmp_path_factory.mktemp("keys") / "config"
    shutil.copytree(cdir0, cdir)
    for name in names:
        with contextlib.suppress(OSError):  # a file an earlier change removed (or made a directory)
            FILE_ONLY[name](dyn0, cdir)
    full = validate_dynamic(static, dyn0, cdir).errors
    assert key_file_errors(static, dyn0, cdir) == full
    assert bool(full) == (set(names) - {"nothing", "an ed25519 key under an rsa selector"} != set())


@pytest.mark.parametrize(("names", "fast"), [
    (["a new domain"], True),
    (["a new domain", "a new domain before the others"], True),
    (["a new domain with a bad selector", "a key file removed"], True),
    (["a new domain", "a key file that is not PEM"], True),
    (["a new domain reporting to an account that does not exist"], True),
    (["a new domain without an MTA-STS policy ID", "an ed25519 key where the selector signs with sha1"], False),
    (["a new domain", "an account's own field"], False),
    (["a new domain", "a domain that addresses use is removed"], False),
    (["a new domain reporting into another domain's alias"], False),
    (["a new domain spelled as another one"], False),
    (["a new domain with an alias of an address that does not exist"], False),
])
def test_added_domains_alone_are_checked_alone(names: list[str], fast: bool, base: tuple[Static, Dynamic, Path],
                                               tmp_path: Path) -> None:
    """Which configs take the added-domains-only way, and that it gives the full errors."""
    static, dyn0, cdir0 = base
    cdir = tmp_path / "config"
    shutil.copytree(cdir0, cdir)
    dyn = dyn0
    for name in names:
        dyn = MUTATIONS[name](dyn, cdir)
    assert (_Validator(static, dyn, cdir, None, dyn0).added_domains_only() is not None) == fast
    assert dynamic_errors(static, dyn, cdir, base=dyn0) == validate_dynamic(static, dyn, cdir).errors
    # the same config without a base, and with an equal base that is another object
    assert dynamic_errors(static, dyn, cdir) == validate_dynamic(static, dyn, cdir).errors
    assert dynamic_errors(static, dyn, cdir, base=copy.deepcopy(dyn0)) == validate_dynamic(static, dyn, cdir).errors
