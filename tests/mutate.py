"""Seeded mutations of the golden mox configs, for comparing our verdicts with the real mox's.

`domains_mutations(seed, n)` and `static_mutations(seed, n)` return `Mutation`s: a golden config
dir's files with one to three edits each, made on the text (so they can hold what our writer would
refuse to write), drawn from pools of values chosen where Go and Python differ (Unicode case
mapping and letters of newer Unicode versions, IDNA, URL hosts, RE2 syntax, number syntax,
addresses, mox's own rules). The same seed gives the same mutations on every machine. Each edit
carries a `kind`; the deliberate differences (reconciler/mox/README.md) are named by kind in
`DELIBERATE`, so a test can excuse exactly those and nothing else.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .golden import GOLDEN, golden_step

# Edits whose verdicts differ from mox's on purpose (reconciler/mox/README.md, "Differences").
DELIBERATE = frozenset({"hash-key", "lax-label", "carriage-return"})

# --- pools of values


def _c(cp: int) -> str:
    return chr(cp)


# Upper/lower pairs that Python 3.11's tables (Unicode 14) do not know and Go 1.27's do.
CASE_PAIRS = [
    (0xA7CB, 0x0264), (0x1C89, 0x1C8A), (0x10D50, 0x10D70), (0xA7CC, 0xA7CD), (0xA7DA, 0xA7DB),
    (0xA7DC, 0x019B), (0xA7CE, 0xA7CF), (0xA7D2, 0xA7D3), (0xA7D4, 0xA7D5), (0x2C2F, 0x2C5F),
    (0xA7C0, 0xA7C1), (0x10570, 0x10597), (0x1E900, 0x1E922), (0x0130, 0x0069), (0x212A, 0x006B),
]
NEW_LETTERS = [0x11F04, 0x10D70, 0x10D4A, 0x105C0, 0x11B60, 0x16D40, 0x1E5D0, 0x11380, 0x10940,
               0x11DB0, 0x1E6C0, 0x16EA0, 0x31350, 0x2EBF0]
EMOJI = ["☕", "💌", "🇳🇱", "⌚", "✉", "♥"]

DOMAINS = [
    "example.org", "Example.ORG", "café.example", "CAFÉ.example", "xn--caf-dma.example", "bücher.example",
    "ünï.example", "faß.example", "ⓡ.example", "ﬀ.example", "a\u0301.example", "例え.テスト",
    *[_c(cp) + ".example" for cp in NEW_LETTERS[:8]],
    *[e + ".example" for e in EMOJI[:4]], *[_c(u) + ".example" for u, _ in CASE_PAIRS[:6]],
    "a..b.example", ".example", "x" * 64 + ".example", "ex ample.org", "exa_mple.org", "-a.example",
    "a-.example", "ab--c.example", "xn--a.example", "xn--nxasmq6b.example", "١٢٣.example",
    "a·b.example", "l·l.example", "a\u200db.example", "מ.example", "a.מ", "ا1.example", "1.2.3.4",
    "::1", "", "example.org.", "⑴.example", "½.example", "\u30fb.example", "a\u30fbア.example",
    "\u0660\u06f0.example", "ǅ.example", "İ.example", "Σ.example", "\u00ad.example", "a\u00adb.example",
    "\u2488.example", "a/b.example", "a%41.example", "a*.example", "*.example", "a@b.example",
]
LOCALPARTS = [
    "alice", "Alice", "ALICE", "josé", "JOSÉ", "ü", "Ü", '"quoted local"', '"a\\"b"', "a+b", "a.b",
    ".a", "a..b", "a.", "a b", "a\tb", "x" * 65, "x" * 129, "a-b", "a_b", "a/b", "#a", "é" * 40,
    *[_c(u) for u, _ in CASE_PAIRS], *[_c(low) for _, low in CASE_PAIRS], "ﬀ", "ß", "ẞ", "Σ", "ς",
    *[_c(cp) for cp in NEW_LETTERS[:4]], "☕",
]
MAILBOXES = ["Inbox", "INBOX", "İnbox", "inbox/sub", "Archive", "a/b", "/a", "a/", "a//b", ".", "..",
             "#x", "a\u0301", "á", "Junk", "Rejects", "x\u0085y", "Sent"]
REGEXPS = [
    r"^(junk|spam)", r"\C", r"a\C", "(" * 999 + "a" + ")" * 999, "(" * 1000 + "a" + ")" * 1000,
    "(" * 1001 + "a" + ")" * 1001, "(?:" * 1001 + "a" + ")" * 1001, r"(?P<é>a)", r"(?P<a1>a)",
    r"(?<n>a)", r"(?P<>a)", r"(?P<a>a)(?P<a>b)", r"\p{Garay}", r"\p{Todhri}", r"\p{Sidetic}",
    r"\p{Kawi}", r"\p{Greek}", r"\p{Nope}", r"\pL", r"\p{L}", r"\p{Letter}", r"\p{letter}",
    r"\p{Lu}", r"\p{Any}", r"\p{ASCII}", r"\p{Assigned}", r"\p{Cn}", r"\p{LC}", r"\P{Han}",
    r"\p{^Greek}", r"\p{Old_Italic}", r"\p{old italic}", r"\p{OLD-ITALIC}", r"a{1000}", r"a{1001}",
    r"(a{100}){10}", r"(a{100}){11}", r"a{2,1}", r"a**", r"a*?", r"a++", r"(?i)K", r"(?U)a*",
    r"(?s).", r"(?m)^a$", r"(?x)a", r"\Q.*\E", r"[a-", r"[z-a]", r"(", r")", r"\8", r"\z", r"\Z",
    r"\b\B", r"[[:alpha:]]", r"[[:word:]]", r"[[:foo:]]", r"\d\D\s\S\w\W", r"\x{10FFFF}", r"\x{110000}",
    r"\pN+", r"(?i)\x{212A}", r"\_", r"\-", r"\ ", r"[\d-z]", r"a{,5}", r"a{1,1001}", "\\",
    r"(?P=n)", r"(?=a)", r"(?!a)", r"(?<=a)", r"\1", r"x{0}", "a|" * 50 + "b",
]
URLS = [
    "https://example.org/hook", "http://example.org:8080/x", "https://user:pass@example.org/",
    "https://ex ample.org/", "https://ex\\ample.org/", "https://ex{ample.org/", "https://ex|ample.org/",
    "https://ex^ample.org/", "https://ex`ample.org/", "https://%41.example/", "https://[x]/",
    "https://[::1]/", "https://[::1]:80/", "https://[fe80::1%25en0]/", "https://[fe80::1%en0]/",
    "https://[::1]x/", "https://example.org:port/", "https://example.org:/", "https://exam%70le.org/",
    "https://ex%zzample.org/", "https://example.org/%zz", "https://example.org/%", "https://example.org/a b",
    "https://例え.テスト/", "https://ex\"ample.org/", "https://ex<ample.org/", "https://ex>ample.org/",
    "https://ex!$&'()*+,;=ample.org/", "https://ex[ample.org/", "https://ex]ample.org/", "https://ex%20ample.org/",
    "ftp://example.org/", "example.org/hook", "//example.org/", "https:example.org", "1http://x/",
    ":foo", "https://", "https:///path", "HTTPS://EXAMPLE.ORG/", "https://example.org?q=1#frag",
    "https://example.org/#frag%zz", "https://exa~mple.org/", "https://a_b.example/", "http://[::1%25lo]:8/",
    "http://1.2.3.4:65536/", "http://example.org:99999999999999999999/", "http://ex%2Fample.org/",
]
FLOATS = ["0.950000", "0.9_5", "0_0.95", "0.95_", "_0.95", "0.9__5", "1e-3", "1_0e-1", "0x1p-2", "0x_1p-2",
          "0x1_0p-5", "0_x1p-2", ".5", "5.", "1e", "inf", "-0", "+0.1", "1_000", "0.1e1_0", "NaN",
          "0b1", "0o7", "0x1.8p0", "0x1.8", "1__0", "0_1", "01.5", "1e+_1", "0.5 "]
INTS = ["10", "-1", "0", "1_000", "0x10", "010", "+5", "9223372036854775808", "1e3", " 5", "5 "]
DURATIONS = ["72h", "72h0m0s", "1.5h", "-1h", "1d", "5", "0", "1h1h", ".5s", "1µs", "1us", "9999999999h"]
USERS = ["1000", "mox", "root", "nobody", "0", "nonexistent-user-xyz", "-1", "4294967295", "4294967296",
         "1_000", "0x10", "+1000", "01000", "65534", "daemon"]

# --- a config dir as text


@dataclass
class Config:
    """The files of a config dir as text (domains.conf, mox.conf) plus extra files to write."""

    domains: list[str]
    static: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)  # deliberate-difference kinds an edit brought in

    def key_index(self, lines: list[str], path: Sequence[str]) -> int:
        """Line index of the key at `path` (one name per indentation level), or -1."""
        lo, hi = 0, len(lines)
        idx = -1
        for depth, name in enumerate(path):
            idx = -1
            for i in range(lo, hi):
                line = lines[i]
                if _indent(line) == depth and _key(line) == name:
                    idx = i
                    break
            if idx < 0:
                return -1
            lo, hi = idx + 1, _block_end(lines, idx)
        return idx

    def children(self, lines: list[str], path: Sequence[str]) -> list[str]:
        i = self.key_index(lines, path)
        if i < 0:
            return []
        return [_key(ln) for ln in lines[i + 1 : _block_end(lines, i)] if _indent(ln) == len(path)]

    def add(self, lines: list[str], path: Sequence[str], block: Sequence[str]) -> None:
        """Append `block` (lines relative to `path`'s children, no indentation) under `path`,
        creating missing keys at the end of their parent."""
        for depth in range(len(path)):
            if self.key_index(lines, path[: depth + 1]) < 0:
                parent = self.key_index(lines, path[:depth]) if depth else -1
                at = _block_end(lines, parent) if parent >= 0 else len(lines)
                if parent >= 0 and lines[parent].endswith(": nil"):
                    lines[parent] = lines[parent][: -len(" nil")]
                lines.insert(at, "\t" * depth + path[depth] + ":")
        i = self.key_index(lines, path)
        if lines[i].endswith(": nil"):
            lines[i] = lines[i][: -len(" nil")]
        at = _block_end(lines, i)
        lines[at:at] = ["\t" * (len(path)) + b for b in block]

    def set(self, lines: list[str], path: Sequence[str], value: str) -> None:
        i = self.key_index(lines, path)
        if i >= 0:
            end = _block_end(lines, i)
            lines[i : end] = ["\t" * (len(path) - 1) + path[-1] + ": " + value]
        else:
            self.add(lines, path[:-1], [path[-1] + ": " + value])

    def write(self, root: Path) -> Path:
        """The config dir at `root/config` (golden instance + keys + these files); mox.conf's path.

        The golden files are hard links to one copy beside `root` (hundreds of configs cost one
        copy); nothing writes into them: the files this config has of its own replace the link."""
        config = root / "config"
        base = _base_copy(root.parent)
        for src in base.rglob("*"):
            dst = config / src.relative_to(base)
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(src, dst)
                except OSError:  # another file system, or no links there
                    shutil.copyfile(src, dst)
        (root / "data").mkdir(exist_ok=True)
        for name, lines in (("domains.conf", self.domains), ("mox.conf", self.static)):
            (config / name).unlink(missing_ok=True)
            (config / name).write_text("".join(ln + "\n" for ln in lines))
        for rel, data in self.files.items():
            p = config / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if data == b"<dir>":
                p.mkdir(exist_ok=True)
            else:
                p.unlink(missing_ok=True)
                p.write_bytes(data)
        return config / "mox.conf"


def _base_copy(parent: Path) -> Path:
    """The golden instance's config dir and DKIM keys, copied once into `parent`/.golden-config."""
    base = parent / ".golden-config"
    if not base.exists():
        tmp = parent / f".golden-config.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(GOLDEN / "instance" / "config", tmp)
        (tmp / "domains.conf").unlink(missing_ok=True)
        (tmp / "dkim").mkdir(exist_ok=True)
        for key in (GOLDEN / "dkim-keys").iterdir():
            shutil.copyfile(key, tmp / "dkim" / key.name)
        try:
            tmp.rename(base)
        except OSError:  # made meanwhile by another process
            shutil.rmtree(tmp, ignore_errors=True)
    return base


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip("\t"))


def _key(line: str) -> str:
    s = line.lstrip("\t")
    if s.startswith("- ") or s == "-":
        return ""
    k, sep, _ = s.partition(": ")
    return k if sep else s.removesuffix(":")


def _block_end(lines: list[str], i: int) -> int:
    d = _indent(lines[i])
    j = i + 1
    while j < len(lines) and (_indent(lines[j]) > d or lines[j].strip() == ""):
        j += 1
    return j


def golden(step: str) -> Config:
    s = golden_step(step)
    return Config((s / "domains.conf").read_text().splitlines(),
                  (GOLDEN / "instance" / "config" / "mox.conf").read_text().splitlines())


@dataclass(frozen=True)
class Mutation:
    name: str
    kinds: tuple[str, ...]
    config: Config

    @property
    def deliberate(self) -> bool:
        return bool(set(self.kinds) & DELIBERATE)


# --- edits of domains.conf: each takes (rng, config) and returns its kind


Edit = Callable[[random.Random, Config], str]


def _domains_of(c: Config) -> list[str]:
    return c.children(c.domains, ["Domains"])


def _accounts_of(c: Config) -> list[str]:
    return c.children(c.domains, ["Accounts"])


def _domain(rng: random.Random, c: Config) -> str:
    return _tagged(c, rng.choice(DOMAINS))


def _tagged(c: Config, value: str) -> str:
    """`value`, noting in `c.tags` when it is a name with an empty or over-long label."""
    if _lax_label(value):
        c.tags.add("lax-label")
    return value


def e_destination(rng: random.Random, c: Config) -> str:
    acc = rng.choice(_accounts_of(c))
    lp = rng.choice(LOCALPARTS)
    dom = rng.choice(_domains_of(c) if rng.random() < 0.7 else DOMAINS)
    key = rng.choice([f"{lp}@{dom}", f"{lp}@{dom}", f"@{dom}", lp])
    c.add(c.domains, ["Accounts", acc, "Destinations"], [f"{key}: nil"])
    return "destination"


def e_case_pair(rng: random.Random, c: Config) -> str:
    """Two destinations that are one address after Go's lower-casing (or two, where it is not)."""
    up, low = rng.choice(CASE_PAIRS)
    dom = rng.choice(_domains_of(c))
    accs = _accounts_of(c)
    pre = rng.choice(["", "x", "Bob"])
    c.add(c.domains, ["Accounts", rng.choice(accs), "Destinations"], [f"{pre}{_c(up)}@{dom}: nil"])
    c.add(c.domains, ["Accounts", rng.choice(accs), "Destinations"], [f"{pre.lower()}{_c(low)}@{dom}: nil"])
    return "case-pair"


def e_domain(rng: random.Random, c: Config) -> str:
    d = _domain(rng, c)
    c.add(c.domains, ["Domains"], [f"{d}: nil"])
    if rng.random() < 0.5:
        c.add(c.domains, ["Accounts", rng.choice(_accounts_of(c)), "Destinations"], [f"x@{d}: nil"])
    return "domain"


def _lax_label(d: str) -> bool:
    labels = d.split(".")
    return d != "" and any(lab.replace("\u00ad", "") == "" or len(lab.encode()) > 63 for lab in labels)  # U+00AD is ignored


def e_selector(rng: random.Random, c: Config) -> str:
    dom = rng.choice([d for d in _domains_of(c) if c.children(c.domains, ["Domains", d, "DKIM", "Selectors"])]
                     or _domains_of(c))
    keys = sorted(p.name for p in (GOLDEN / "dkim-keys").iterdir())
    name = rng.choice(["ünï", "2027a", "Sel", "SEL", "a.b", "a_b", "-x", "☕", _c(NEW_LETTERS[0]), "xn--n-nga1b",
                       _c(CASE_PAIRS[0][0]), "x" * 64, "a..b"])
    block = [f"{name}:", f"\tExpiration: {rng.choice(DURATIONS)}", f"\tPrivateKeyFile: dkim/{rng.choice(keys)}"]
    if rng.random() < 0.3:
        block.insert(1, f"\tHash: {rng.choice(['sha256', 'sha1', 'SHA256', 'md5'])}")
    c.add(c.domains, ["Domains", dom, "DKIM", "Selectors"], block)
    if rng.random() < 0.4:
        c.add(c.domains, ["Domains", dom, "DKIM", "Sign"], [f"- {name}"])
    _tagged(c, name)
    return "selector"


def e_alias(rng: random.Random, c: Config) -> str:
    dom = rng.choice(_domains_of(c))
    lp = rng.choice(LOCALPARTS)
    members = [rng.choice(["alice@example.org", "bob@example.org", "Alice@example.org", "nobody@example.org",
                           "admin@mail.example.org", "bob.smith@example.org", "José@café.example"])
               for _ in range(rng.randint(0, 2))]
    c.add(c.domains, ["Domains", dom, "Aliases", lp, "Addresses"], [f"- {m}" for m in members] or ["- "])
    return "alias"


def e_fromid(rng: random.Random, c: Config) -> str:
    acc = rng.choice(_accounts_of(c))
    lp = rng.choice(["alice", "alice+x", "bob+y", "x+y", "nobody", "Alice+X", "tlsreports", "dmarcreports+z",
                     "postmaster", "admin+a", "x"])
    dom = rng.choice(_domains_of(c))
    if rng.random() < 0.5:
        c.set(c.domains, ["Domains", dom, "LocalpartCatchallSeparator"], rng.choice(["+", "-", "+"]))
    if rng.random() < 0.4:
        other = rng.choice(_accounts_of(c))
        c.add(c.domains, ["Accounts", other, "Destinations"], [f"@{dom}: nil"])
    c.add(c.domains, ["Accounts", acc, "FromIDLoginAddresses"], [f"- {lp}@{dom}"])
    return "fromid"


def e_webhook(rng: random.Random, c: Config) -> str:
    acc = rng.choice(_accounts_of(c))
    which = rng.choice(["OutgoingWebhook", "IncomingWebhook"])
    c.add(c.domains, ["Accounts", acc, which], [f"URL: {rng.choice(URLS)}"])
    return "url"


def e_regexp(rng: random.Random, c: Config) -> str:
    acc = rng.choice(_accounts_of(c))
    rx = rng.choice(REGEXPS)
    where = rng.random()
    if where < 0.4:
        c.set(c.domains, ["Accounts", acc, "AutomaticJunkFlags", "JunkMailboxRegexp"], rx)
    elif where < 0.7:
        c.add(c.domains, ["Accounts", acc, "Destinations"],
              [f"regexp{rng.randint(0, 9)}@example.org:", "\tRulesets:", "\t\t-", f"\t\t\tSMTPMailFromRegexp: {rx}",
               "\t\t\tMailbox: Lists"])
    else:
        c.add(c.domains, ["Accounts", acc, "Destinations"],
              [f"hdr{rng.randint(0, 9)}@example.org:", "\tRulesets:", "\t\t-", "\t\t\tHeadersRegexp:",
               f"\t\t\t\t{rng.choice(['subject', 'Subject', 'x-' + _c(CASE_PAIRS[0][0])])}: {rx}",
               "\t\t\tMailbox: Lists"])
    return "regexp"


def e_float(rng: random.Random, c: Config) -> str:
    acc = rng.choice([a for a in _accounts_of(c) if c.key_index(c.domains, ["Accounts", a, "JunkFilter"]) >= 0]
                     or _accounts_of(c))
    key = rng.choice([["JunkFilter", "Threshold"], ["JunkFilter", "Params", "MaxPower"],
                      ["JunkFilter", "Params", "IgnoreWords"], ["JunkFilter", "Params", "TopWords"],
                      ["JunkFilter", "Params", "RareWords"], ["QuotaMessageSize"], ["MaxOutgoingMessagesPerDay"]])
    pool = INTS if key[-1] in ("TopWords", "RareWords", "QuotaMessageSize", "MaxOutgoingMessagesPerDay") else FLOATS
    if key[0] == "JunkFilter" and c.key_index(c.domains, ["Accounts", acc, "JunkFilter"]) < 0:
        c.add(c.domains, ["Accounts", acc, "JunkFilter", "Params"], ["Onegrams: true"])
    c.set(c.domains, ["Accounts", acc, *key], rng.choice(pool + INTS))
    return "number"


def _replace_value(rng: random.Random, c: Config, lines: list[str], pools: dict[str, Sequence[str]],
                   default: Sequence[str]) -> str:
    """Replace the value of a random `Key: value` line with one from the pool of its key."""
    i = rng.choice([i for i, ln in enumerate(lines) if ": " in ln and not ln.lstrip("\t").startswith("-")])
    pool = pools.get(_key(lines[i]), default)
    lines[i] = lines[i][: lines[i].index(": ") + 2] + _tagged(c, rng.choice(pool))
    return "value"


def e_value(rng: random.Random, c: Config) -> str:
    """Another value for a scalar already in the file, from the pool of its kind."""
    pools: dict[str, Sequence[str]] = {
        "Localpart": LOCALPARTS, "Account": ["alice", "bob", "admin", "nobody", "Alice"],
        "Mailbox": MAILBOXES, "RejectsMailbox": MAILBOXES, "Domain": DOMAINS, "ClientSettingsDomain": DOMAINS,
        "LocalpartCatchallSeparator": ["+", "-", "", "++", "@", ".", "ü", "+-"], "Expiration": DURATIONS,
        "PolicyID": ["x", "", "20261125T162841", "a b"], "Mode": ["enforce", "testing", "none", "Enforce", ""],
        "MaxAge": DURATIONS, "Period": DURATIONS, "Threshold": FLOATS, "MaxPower": FLOATS, "IgnoreWords": FLOATS,
        "TopWords": INTS, "RareWords": INTS, "Disabled": ["true", "false", "True", "1", "yes"],
        "Onegrams": ["true", "false", "TRUE"], "JunkMailboxRegexp": REGEXPS, "NeutralMailboxRegexp": REGEXPS,
        "NoCustomPassword": ["true", "false", "t"], "ListMembers": ["true", "false"],
        "PrivateKeyFile": ["dkim/missing.pem", "", "dkim", "../config/mox.conf"],
    }
    return _replace_value(rng, c, c.domains, pools, [*DOMAINS[:4], "x", "", "true", "1"])


def e_structure(rng: random.Random, c: Config) -> str:
    """A line-level edit: mox's sconf parser must agree on what it reads."""
    lines = c.domains
    i = rng.randrange(1, len(lines))
    op = rng.choice(["drop", "dup", "indent", "dedent", "hash-key", "carriage-return", "space", "unknown-key"])
    if op == "drop":
        del lines[i]
    elif op == "dup":
        lines.insert(i, lines[i])
    elif op == "indent":
        lines[i] = "\t" + lines[i]
    elif op == "dedent" and lines[i].startswith("\t"):
        lines[i] = lines[i][1:]
    elif op == "hash-key":
        acc = rng.choice(_accounts_of(c))
        c.add(c.domains, ["Accounts", acc, "Destinations"], ["#x@example.org: nil"])
        return "hash-key"
    elif op == "carriage-return":
        j = rng.choice([k for k, ln in enumerate(lines) if ": " in ln])
        lines[j] += "\r"
        return "carriage-return"
    elif op == "space":
        lines[i] = lines[i].replace("\t", "    ", 1)
    elif op == "unknown-key":
        lines.insert(i, "\t" * _indent(lines[i]) + "NoSuchKey: 1")
    return "structure"


DOMAIN_EDITS: list[tuple[Edit, int]] = [
    (e_destination, 6), (e_case_pair, 5), (e_domain, 6), (e_selector, 4), (e_alias, 3), (e_fromid, 4),
    (e_webhook, 5), (e_regexp, 6), (e_float, 4), (e_value, 6), (e_structure, 2),
]

BASES = ["09", "11", "14", "17", "34"]


def _mutations(seed: int, n: int, edits: list[tuple[Edit, int]], prefix: str) -> list[Mutation]:
    rng = random.Random(seed)
    fns = [e for e, _ in edits]
    weights = [w for _, w in edits]
    out: list[Mutation] = []
    for k in range(n):
        c = golden(rng.choice(BASES))
        kinds = tuple(fn(rng, c) for fn in rng.choices(fns, weights, k=rng.choice([1, 1, 2, 3])))
        kinds += tuple(sorted(c.tags))
        out.append(Mutation(f"{prefix}-{seed}-{k}", kinds, c))
    return out


def domains_mutations(seed: int, n: int) -> list[Mutation]:
    """`n` mutated domains.conf files (with the golden mox.conf)."""
    return _mutations(seed, n, DOMAIN_EDITS, "domains")


# --- edits of mox.conf

_CERT = (GOLDEN / "instance" / "config" / "tls" / "mail.example.org.crt.pem").read_bytes()
_KEY = (GOLDEN / "instance" / "config" / "tls" / "mail.example.org.key.pem").read_bytes()
_RSA = (GOLDEN / "instance" / "config" / "hostkeys" / "mail.example.org.rsa2048.privatekey.pkcs8.pem").read_bytes()


def s_user(rng: random.Random, c: Config) -> str:
    c.set(c.static, ["User"], rng.choice(USERS))
    return "user"


def s_keycert(rng: random.Random, c: Config) -> str:
    files = {
        "tls/garbage.pem": b"not pem\n", "tls/empty.pem": b"", "tls/dir": b"<dir>",
        "tls/rsakey.pem": _RSA, "tls/both.pem": _CERT + _KEY, "tls/keycert.pem": _KEY + _CERT,
        "tls/cert-as-key.pem": _CERT, "tls/trunc.pem": _CERT[: len(_CERT) // 2],
        "tls/badb64.pem": b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        "tls/badder.pem": b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "tls/badkey.pem": b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "tls/ec-key.pem": _KEY.replace(b"PRIVATE KEY", b"EC PRIVATE KEY"),
    }
    c.files.update(files)
    choices = ["tls/mail.example.org.crt.pem", "tls/mail.example.org.key.pem", "tls/missing.pem",
               "/nonexistent/x.pem", *files]
    which = rng.choice(["CertFile", "KeyFile", "both"])
    i = c.key_index(c.static, ["Listeners", "public", "TLS", "KeyCerts"])
    for j in range(i, len(c.static)):
        line = c.static[j]
        if (which in ("CertFile", "both") and "CertFile:" in line) or (which in ("KeyFile", "both") and "KeyFile:" in line):
            c.static[j] = line[: line.index(": ") + 2] + rng.choice(choices)
    return "keycert"


def s_value(rng: random.Random, c: Config) -> str:
    """Another value for a scalar already in mox.conf, from the pool of its kind."""
    pools: dict[str, Sequence[str]] = {
        "User": USERS, "LogLevel": ["info", "debug", "Info", "trace", "x", ""], "Hostname": DOMAINS,
        "DataDir": ["../data", "", "/nonexistent"], "Account": ["admin", "nobody", ""], "Mailbox": MAILBOXES,
        "Localpart": LOCALPARTS, "Port": ["10025", "0", "-1", "65536", "x", "1_0"],
        "Enabled": ["true", "false", "yes"], "CertFile": ["tls/missing.pem"], "KeyFile": ["tls/missing.pem"],
        "AdminPasswordFile": ["adminpasswd", "missing"],
    }
    return _replace_value(rng, c, c.static, pools, ["x", "", "true", "1"])


def s_list(rng: random.Random, c: Config) -> str:
    what = rng.choice(["ip", "natip", "hostkey", "dnsbl", "mailbox", "transport", "minversion", "acme", "ca"])
    if what == "ip":
        c.add(c.static, ["Listeners", "public", "IPs"], [f"- {rng.choice(['1.2.3.4', 'x', '::', '0.0.0.0', '1.2.3', 'fe80::1%lo'])}"])
    elif what == "natip":
        c.add(c.static, ["Listeners", "public", "NATIPs"], [f"- {rng.choice(['127.0.0.1', '0.0.0.0', '::1', 'x', '203.0.113.1'])}"])
    elif what == "hostkey":
        c.files["hostkeys/garbage.pem"] = b"x"
        c.files["hostkeys/cert.pem"] = _CERT
        c.add(c.static, ["Listeners", "public", "TLS", "HostPrivateKeyFiles"],
              [f"- {rng.choice(['hostkeys/missing.pem', 'hostkeys/garbage.pem', 'hostkeys/cert.pem', 'tls/mail.example.org.key.pem'])}"])
    elif what == "dnsbl":
        c.add(c.static, ["Listeners", "public", "SMTP", "DNSBLs"], [f"- {_domain(rng, c)}"])
    elif what == "mailbox":
        if rng.random() < 0.5:
            c.add(c.static, ["DefaultMailboxes"], [f"- {rng.choice(MAILBOXES)}"])
        else:
            c.add(c.static, ["InitialMailboxes", "SpecialUse"], [f"Sent: {rng.choice(MAILBOXES)}"])
    elif what == "transport":
        kind = rng.choice(["Submissions", "Submission", "SMTP", "Socks", "Direct", "Fail"])
        body = {
            "Submissions": [f"Host: {_domain(rng, c)}", "NoSTARTTLS: true"],
            "Submission": [f"Host: {_domain(rng, c)}", "Auth:", "\tMechanisms:", "\t\t- PLAIN", f"\t\t- {rng.choice(['PLAIN', 'XOAUTH2', 'CRAM-MD5'])}"],
            "SMTP": [f"Host: {_domain(rng, c)}"],
            "Socks": [f"Address: {rng.choice(['127.0.0.1:1080', 'x', '[::1]:1080', ':1'])}", f"RemoteHostname: {_domain(rng, c)}",
                      "RemoteIPs:", f"\t- {rng.choice(['1.2.3.4', 'x'])}"],
            "Direct": [f"DisableIPv4: {rng.choice(['true', 'false'])}", f"DisableIPv6: {rng.choice(['true', 'false'])}"],
            "Fail": [f"SMTPCode: {rng.choice(['0', '451', '554', '300', '99', '600'])}",
                     f"SMTPMessage: {rng.choice(['x', 'é', 'a' * 257, ''])}"],
        }[kind]
        c.add(c.static, ["Transports", "t1", kind], body)
    elif what == "minversion":
        c.add(c.static, ["Listeners", "public", "TLS"], [f"MinVersion: {rng.choice(['TLSv1.2', 'TLSv1.4', 'tls1.2'])}"])
    elif what == "acme":
        c.add(c.static, ["ACME", "le"], [f"DirectoryURL: {rng.choice(URLS)}", "ContactEmail: a@example.org"])
        if rng.random() < 0.5:
            c.files["eab.key"] = rng.choice([b"AAAA", b"A", b"!!", b"AAAA\n"])
            c.add(c.static, ["ACME", "le", "ExternalAccountBinding"], ["KeyID: x", f"KeyFile: {rng.choice(['eab.key', 'missing.key'])}"])
    elif what == "ca":
        c.files["ca.pem"] = rng.choice([_CERT, b"x", b""])
        c.add(c.static, ["TLS", "CA"], ["CertFiles:", f"\t- {rng.choice(['ca.pem', 'missing.pem'])}"])
    return what


STATIC_EDITS: list[tuple[Edit, int]] = [(s_user, 3), (s_keycert, 4), (s_value, 5), (s_list, 6)]


def static_mutations(seed: int, n: int) -> list[Mutation]:
    """`n` mutated mox.conf files (with a golden domains.conf)."""
    return _mutations(seed, n, STATIC_EDITS, "static")
