"""Reading a numeric CSV: the table reader (pyarrow) against the reader it replaced (Python's
``csv`` module into lists, one ``float()`` per cell).

    .venv/bin/python bench/bench_csv.py [--rows 1000000] [--cols 20] [--repeat 2]

Each reader runs in its own process, ``--repeat`` times, the two interleaved (old, new, old,
new, ...) so load on a shared machine hits both alike; the best time and the lowest memory of
each are kept. Memory is the peak RSS
(``ru_maxrss``) minus the RSS measured right after the process's imports, so the interpreter,
numpy, torch-free nnspec and pyarrow themselves are not counted. Both produce the same result:
a float32 feature matrix ``(rows, cols)`` and the target column. Goal: >= 5x faster and
>= 2.5x less peak memory on 1,000,000 x 20.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path

def rss_mib():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS")) / 1024

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

import numpy as np
which, path = sys.argv[1], Path(sys.argv[2])
if which == "old":
    import csv

    def read():
        # the replaced reader, as it was: every row as a list of str, then float() per cell
        with path.open(newline="") as fh:
            rows = [r for r in csv.reader(fh) if r]
        header, body = rows[0], rows[1:]
        fi = list(range(len(header) - 1))
        x = np.array([[float(r[i]) for i in fi] for r in body], dtype=np.float32)
        y = np.array([r[-1] for r in body])
        return x, y
else:
    import pyarrow, pyarrow.csv, pyarrow.compute  # noqa: F401  (imports are not the reader's cost)
    from nnspec.run.column_fit import fit_columns
    from nnspec.run.file_sources import load_table
    from nnspec.spec.data import DataSpec

    spec = DataSpec(source=f"csv:{path}", target="y")

    def read():
        data = load_table(path, "csv", spec)
        columns = fit_columns(data.table, np.arange(len(data.y)), spec, ("y",), path.name)
        return columns.encode(data.table), data.y

base = rss_mib()
t0 = time.perf_counter()
x, y = read()
seconds = time.perf_counter() - t0
assert x.shape[0] == len(y) and x.dtype == np.float32
print(json.dumps({"seconds": seconds, "peak_mib": peak_mib() - base, "shape": list(x.shape),
                  "checksum": float(x[:, :3].astype(np.float64).sum())}))
"""


def make_csv(path: Path, rows: int, cols: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(0)
    columns = {f"x{i}": np.round(rng.normal(size=rows), 6) for i in range(cols)}
    columns["y"] = rng.integers(0, 3, size=rows)
    pacsv.write_csv(pa.table(columns), path)


def run_once(which: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, which, str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def best_of(results: list[dict[str, float]]) -> dict[str, float]:
    return {
        "seconds": min(r["seconds"] for r in results),
        "peak_mib": min(r["peak_mib"] for r in results),
        "checksum": results[0]["checksum"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "numeric.csv"
        make_csv(path, args.rows, args.cols)
        size = path.stat().st_size / 2**20
        print(f"{args.rows:,} x {args.cols} numeric CSV ({size:.0f} MiB), best of {args.repeat}")
        runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
        for _ in range(args.repeat):
            for which in runs:
                runs[which].append(run_once(which, path))
        old, new = best_of(runs["old"]), best_of(runs["new"])
    if abs(old["checksum"] - new["checksum"]) > 1e-3 * max(1.0, abs(old["checksum"])):
        raise SystemExit(f"the readers disagree: {old['checksum']} vs {new['checksum']}")
    print(f"{'reader':<28}{'seconds':>10}{'peak MiB':>12}")
    print(f"{'csv module (replaced)':<28}{old['seconds']:>10.2f}{old['peak_mib']:>12.0f}")
    print(f"{'pyarrow table reader':<28}{new['seconds']:>10.2f}{new['peak_mib']:>12.0f}")
    print(
        f"speed-up {old['seconds'] / new['seconds']:.1f}x (goal >= 5x), "
        f"memory {old['peak_mib'] / max(new['peak_mib'], 1e-9):.1f}x less (goal >= 2.5x)"
    )


if __name__ == "__main__":
    main()
