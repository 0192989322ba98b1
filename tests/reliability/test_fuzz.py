"""Hypothesis fuzzing of spec text, spec data and data files through the CLI's ``main(argv)``.

Every case must end in exit 0 or in an nnspec error (exit 2) that names where (``file:line`` or
a field path): never another exception type (exit 1, "internal error") and never a traceback.
The default profile keeps CI fast; ``--hypothesis-profile=long`` runs 10,000 cases per test.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from reliability_counts import count
from strategies import experiment_data

from nnspec.cli.main import main

# The "long" profile (conftest.py) sets max_examples to 2,500: 3,000 + 3,000 + 2,000 + 2,000
# = 10,000 cases in the four fuzz tests; the default profile (100) gives 150 + 150 + 60 + 60.
LONG = settings.default.max_examples >= 1000


def cases(default: int, long: int) -> int:
    return long if LONG else default


FUZZ = settings(
    max_examples=cases(150, 3000),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
_LOCATED = re.compile(r"(:\d+(:\d+)?[: ])|(\b[a-z_]+(\.[\w]+)+:)|(data\.source)|(\bspec\b)")

KEYS = [
    "model",
    "data",
    "train",
    "optim",
    "loss",
    "schedule",
    "lint",
    "name",
    "seed",
    "task",
    "layers",
    "input_shape",
    "kind",
    "linear",
    "conv2d",
    "activation",
    "epochs",
    "lr",
    "batch_size",
    "source",
    "dropout",
    "out_features",
    "modle",
    "optm",
    "epocs",
    "<<",
    "spec_version",
    "early_stopping",
    "checkpoint",
    "resume",
    "output_dir",
    "metrics",
]
WEIRD = st.sampled_from(
    [
        float("nan"),
        float("inf"),
        -float("inf"),
        10**30,
        -(10**30),
        2**63,
        1e308,
        -0.0,
        0,
        -1,
        True,
        None,
        "",
        "auto",
        "relu",
        "\x00",
        "\x1b[31m",
        "../../etc",
        "a" * 300,
        [],
        {},
        [[[]]],
        "${oc.env:HOME}",
        "!!python/name:os.system",
        "1e29",
        "yes",
        "0x10",
    ]
)
SCALARS = st.one_of(
    st.integers(), st.floats(), st.text(max_size=20), st.booleans(), st.none(), WEIRD
)


def values(depth: int = 3) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=4),
        ),
        max_leaves=12,
    )


def mutate(data: dict[str, Any], draw: Any) -> dict[str, Any]:
    """One to three mutations: a value replaced, a key misspelt or added, a section deleted."""
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3))
        node: Any = data
        for key in path[:-1]:
            if isinstance(node, dict) and isinstance(node.get(key), dict):
                node = node[key]
        if not isinstance(node, dict):
            continue
        action = draw(st.sampled_from(["set", "delete", "misspell"]))
        key = path[-1]
        if action == "set":
            node[key] = draw(values())
        elif action == "delete" and node:
            node.pop(draw(st.sampled_from(sorted(node, key=str))), None)
        elif action == "misspell" and node:
            old = draw(st.sampled_from(sorted(node, key=str)))
            node[f"{old}x"] = node.pop(old)
    return data


def to_yaml(data: Any) -> str:
    import io

    from ruamel.yaml import YAML

    buf = io.StringIO()
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = None
    yaml.dump(data, buf)
    return buf.getvalue()


def check(path: Path, capsys: Any, *args: str) -> None:
    """The CLI's answer to one case: exit 0, or exit 2 with a located nnspec error.

    Warnings are shown as a user sees them (pytest's error filter would turn a legitimate one,
    such as rows left out for a missing target, into an exception).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        code = main([*args, str(path)])
    out = capsys.readouterr()
    count("cases")
    internal = "internal error" in out.err or "Traceback" in out.err
    count("foreign", internal)
    count("exit1", code == 1)
    assert not internal, out.err
    assert code in (0, 2), (code, out.err)
    if code == 2:
        assert "error" in out.err and _LOCATED.search(out.err), out.err


@st.composite
def mutated_specs(draw: Any) -> str:
    data = json.loads(json.dumps(draw(experiment_data()), default=str))
    return to_yaml(mutate(data, draw))


@st.composite
def damaged_text(draw: Any) -> str:
    """Valid spec text, then truncated, spliced, re-indented, tagged or aliased."""
    text = to_yaml(json.loads(json.dumps(draw(experiment_data()), default=str)))
    how = draw(
        st.sampled_from(
            ["truncate", "splice", "tab", "tag", "alias", "deep", "anchor", "bytes", "dup"]
        )
    )
    at = draw(st.integers(0, max(len(text) - 1, 0)))
    if how == "truncate":
        return text[:at]
    if how == "splice":
        return text[:at] + draw(st.text(max_size=30)) + text[at:]
    if how == "tab":
        return text.replace("  ", "\t", 1)
    if how == "tag":
        tag = draw(
            st.sampled_from(
                [
                    "!!python/object/apply:os.system",
                    "!!binary",
                    "!x",
                    "!!str",
                    "!!float",
                    "!!set",
                    "!!omap",
                ]
            )
        )
        return text.replace(": ", f": {tag} ", 1)
    if how == "alias":
        return "a: &a [1, 2]\n" + text.replace("seed: ", "seed: *a #", 1)
    if how == "deep":
        n = draw(st.integers(50, 400))
        return text + "extra: " + "[" * n + "]" * n + "\n"
    if how == "anchor":
        return "x: &x {model: 1}\n<<: *x\n" + text
    if how == "dup":
        return text + text.splitlines()[0] + "\n"
    return text[:at] + draw(st.binary(max_size=8)).decode("latin-1") + text[at:]


@FUZZ
@given(text=mutated_specs())
def test_mutated_spec_data(tmp_path: Path, capsys: Any, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    check(path, capsys, "validate")


@FUZZ
@given(text=damaged_text())
def test_damaged_spec_text(tmp_path: Path, capsys: Any, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    check(path, capsys, "validate")


@settings(FUZZ, max_examples=cases(60, 2000))
@given(text=mutated_specs())
def test_mutated_specs_through_lint(tmp_path: Path, capsys: Any, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    code = main(["lint", str(path)])
    out = capsys.readouterr()
    count("cases")
    internal = "internal error" in out.err or "Traceback" in out.err
    count("foreign", internal)
    assert not internal, out.err
    # lint's own exit 1 means "findings"; a user mistake is still 2
    assert code in (0, 1, 2)


CELLS = st.one_of(
    st.integers(),
    st.floats(),
    st.text(max_size=6),
    st.sampled_from(["", "NaN", "inf", "-", '"', "a,b", "\x00", "1e400", "true", "\r"]),
)


@st.composite
def csv_text(draw: Any) -> str:
    width = draw(st.integers(1, 4))
    header = draw(
        st.lists(
            st.sampled_from(["a", "b", "y", "", "a", "é", "x y"]), min_size=width, max_size=width
        )
    )
    if draw(st.booleans()):
        header[-1] = "y"
    rows = draw(st.lists(st.lists(CELLS, min_size=width - 1, max_size=width + 1), max_size=12))
    lines = [",".join(header)] + [",".join(str(c) for c in row) for row in rows]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n"]))


@settings(FUZZ, max_examples=cases(60, 2000))
@given(text=csv_text())
@example(text="a,a,a,a\n0,0,0\n0,9007199254740993,,")  # 2**53 + 1: was an ArrowInvalid (long run)
@example(text="\n0,0\n")  # a blank header line: pyarrow's invented names clashed (long run)
def test_fuzzed_csv_through_data(tmp_path: Path, capsys: Any, text: str) -> None:
    data = tmp_path / "d.csv"
    data.write_text(text, encoding="utf-8", errors="surrogateescape")
    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"data: {{source: 'csv:{data}', target: y}}\n"
        "model: {input_shape: auto, layers: [{linear: 4}, {linear: auto}]}\n"
    )
    check(spec, capsys, "data")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "---\n",
        "~\n",
        "[]\n",
        "1\n",
        "a\n",
        "model:\n",
        "model: [\n",
        "\ufeffmodel: {}\n",
        "--- !!map\n",
        "? \n",
    ],
)
def test_degenerate_documents(tmp_path: Path, capsys: Any, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text)
    check(path, capsys, "validate")
