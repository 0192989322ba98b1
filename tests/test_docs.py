"""The repository's docs resolve: every rule id cited is explained in docs/rules.md, which is
the current output of tools/rules_doc.py, and the README links the docs pages."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
RULES_PAGE = ROOT / "docs" / "rules.md"
# Where ids are cited: the code and its messages, the shipped configs, the docs and examples.
SCANNED = ("nnspec", "hydra_plugins", "conf", "examples", "docs", "README.md")
SUFFIXES = frozenset({".py", ".md", ".yaml", ".yml"})

# The id prefixes of the design-rule catalog, a closed set: an open pattern such as
# `[A-Z]+-\d+` would also take `UTF-8`, `SHA-256` or `ISO-8601` for rule ids.
PREFIXES = (
    "PROC", "DATA", "ARCH", "ACT", "OUT", "LOSS", "INIT", "NORM", "REG", "OPT", "LR", "TRAIN",
    "REPRO", "CKPT", "CHECK", "MON", "HPO", "ENS", "CONF",
)  # fmt: skip
# `LR-5..9` cites LR-5 to LR-9 and `MON-1/2/3` cites three ids; `OPT-*` names a whole family.
ID_PATTERN = re.compile(rf"(?<![\w-])({'|'.join(PREFIXES)})-(\d+)((?:\.\.\d+)|(?:/\d+)+)?(?![\w-])")
DOCUMENTED = re.compile(r'^\| <a id="[a-z]+-\d+"></a>([A-Z]+-\d+) \|', re.MULTILINE)


def cited_ids(text: str) -> Iterator[str]:
    """Every rule id a text cites, ranges and slash lists expanded."""
    for m in ID_PATTERN.finditer(text):
        prefix, first, tail = m.group(1), int(m.group(2)), m.group(3) or ""
        if tail.startswith(".."):
            numbers = list(range(first, int(tail[2:]) + 1))
        else:
            numbers = [first, *(int(n) for n in tail.split("/")[1:])]
        yield from (f"{prefix}-{n}" for n in numbers)


def citations(root: Path) -> dict[str, list[str]]:
    """Rule id -> the files under ``root`` (relative paths) that cite it."""
    found: dict[str, list[str]] = {}
    for name in SCANNED:
        top = root / name
        files = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for path in files:
            if path.is_file() and path.suffix in SUFFIXES:
                for rule_id in cited_ids(path.read_text(encoding="utf-8")):
                    found.setdefault(rule_id, []).append(str(path.relative_to(root)))
    return found


def undocumented(root: Path) -> dict[str, list[str]]:
    """Cited ids that ``docs/rules.md`` under ``root`` does not explain, with where they occur."""
    page = root / "docs" / "rules.md"
    documented = (
        set(DOCUMENTED.findall(page.read_text(encoding="utf-8"))) if page.exists() else set()
    )
    return {k: v for k, v in citations(root).items() if k not in documented}


@pytest.fixture
def rules_doc(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(ROOT / "tools"))
    return importlib.import_module("rules_doc")


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("He init (INIT-2), LeCun [INIT-3]", ["INIT-2", "INIT-3"]),
        ("schedules (LR-5..8) and checkpoints CKPT-1..2", ["LR-5", "LR-6", "LR-7", "LR-8",
                                                            "CKPT-1", "CKPT-2"]),
        ("monitors (MON-1/2/3), Bayesian search (OPT-3/REG-8)", ["MON-1", "MON-2", "MON-3",
                                                                  "OPT-3", "REG-8"]),
        ("UTF-8 text, SHA-256 hashes, ISO-8601 dates, PEP-562, X-1, NNSPEC-2, OPT-*", []),
        ("INIT-2b, DATA-4-ish, my-LR-3", []),
    ],
)  # fmt: skip
def test_id_pattern_takes_rule_ids_only(text: str, ids: list[str]) -> None:
    assert list(cited_ids(text)) == ids


def test_every_cited_rule_id_is_documented() -> None:
    cited = citations(ROOT)
    assert len(cited) > 50, "the scan found almost no ids: is the pattern or the tree wrong?"
    missing = undocumented(ROOT)
    assert not missing, "rule ids cited but not explained in docs/rules.md:\n" + "\n".join(
        f"  {rule_id}: {', '.join(sorted(set(files)))}" for rule_id, files in missing.items()
    )


def test_an_undocumented_id_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "rules.md").write_text(
        '| <a id="init-2"></a>INIT-2 | He. | Default. |\n', encoding="utf-8"
    )
    (tmp_path / "nnspec").mkdir()
    (tmp_path / "nnspec" / "a.py").write_text("# He (INIT-2), head bias (INIT-7/8)\n")
    (tmp_path / "README.md").write_text("UTF-8 only; see INIT-2.\n")
    assert undocumented(tmp_path) == {"INIT-7": ["nnspec/a.py"], "INIT-8": ["nnspec/a.py"]}


def test_rules_page_is_current(rules_doc: ModuleType) -> None:
    assert RULES_PAGE.read_text(encoding="utf-8") == rules_doc.render(), (
        "docs/rules.md is out of date: run `python tools/rules_doc.py`"
    )


def test_rules_page_prefixes_match_the_catalog(rules_doc: ModuleType) -> None:
    texts = importlib.import_module("rule_texts")
    assert tuple(texts.SECTIONS) == PREFIXES
    assert {rule_id.split("-")[0] for rule_id in texts.RULES} <= set(PREFIXES)


def test_every_lint_rule_and_init_default_is_on_the_page(rules_doc: ModuleType) -> None:
    from nnspec.compile import DEFAULT_INIT
    from nnspec.lint import RULES
    from nnspec.lint.engine import load_builtin_rules

    load_builtin_rules()
    page = RULES_PAGE.read_text(encoding="utf-8")
    for r in RULES.values():
        assert f"| [{r.rule}](#{r.rule.lower()}) | `{r.name}` | {r.severity} |" in page
    documented = set(DOCUMENTED.findall(page))
    assert {auto.rule_id for auto in DEFAULT_INIT.values()} <= documented


LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)
HTML_ANCHOR = re.compile(r'<a id="([^"]+)"></a>')


def anchors(page: Path) -> set[str]:
    """The anchors a Markdown page offers: GitHub's heading slugs and explicit ``<a id>``."""
    text = page.read_text(encoding="utf-8")
    slugs = {
        re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        for heading in HEADING.findall(re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    }
    return slugs | set(HTML_ANCHOR.findall(text))


def broken_links(page: Path) -> list[str]:
    """Relative links of ``page`` whose file or anchor does not exist."""
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists() or (anchor and dest.suffix == ".md" and anchor not in anchors(dest)):
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", ["README.md", *(f"docs/{p.name}" for p in ROOT.glob("docs/*.md"))])
def test_links_resolve(page: str) -> None:
    assert not broken_links(ROOT / page)


def test_a_broken_link_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Top\n\n## Bench marks\n\n[ok](#bench-marks) [b](#nope)\n")
    (tmp_path / "b.md").write_text("[a](a.md#top) [gone](c.md) [web](https://x.org/y)\n")
    assert broken_links(tmp_path / "a.md") == ["#nope"]
    assert broken_links(tmp_path / "b.md") == ["c.md"]


def test_readme_links_the_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in ("docs/rules.md", "docs/benchmarks.md"):
        assert f"]({page})" in readme, f"README.md does not link {page}"
        assert (ROOT / page).is_file()


# Issue numbers and dates rot in code: the tracker moves on, figures change. Figures belong in
# docs/benchmarks.md with the command that reproduces them.
ISSUE_REF = re.compile(r"\bissues?[\s-]*#?\d+|\bthe issue's\b", re.IGNORECASE)
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")


def _text_files(*names: str) -> Iterator[Path]:
    for name in names:
        top = ROOT / name
        for path in [top] if top.is_file() else sorted(top.rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES:
                yield path


@pytest.mark.parametrize(
    ("text", "hit"),
    [("see issue " + "6", True), ("(issue" + "-2 examples)", True), ("issues #" + "12", True),
     ("the issue" + "'s length", True), ("every issue is collected", False), ("tissue 3", False)],
)  # fmt: skip
def test_issue_pattern(text: str, hit: bool) -> None:
    assert bool(ISSUE_REF.search(text)) is hit


def test_no_issue_numbers_in_code_or_docs() -> None:
    names = ("nnspec", "hydra_plugins", "tests", "bench", "conf", "examples", "docs", "tools")
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _text_files(*names, "README.md")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if ISSUE_REF.search(line)
    ]
    assert not found, "issue references (say what the code does instead):\n" + "\n".join(found)


def test_no_dates_in_code() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in _text_files("nnspec", "hydra_plugins", "bench", "tools")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if DATE.search(line)
    ]
    assert not found, "dates in code (move dated figures to docs/benchmarks.md):\n" + "\n".join(
        found
    )
