"""Instructions per connection set up and per HTTP API trigger, counted by callgrind.

The host under this VM is shared and its speed drifts by 2x within an hour, so two builds'
timings only compare when run side by side many times. Instructions do not drift: callgrind
counts the same total for the same binary and input whatever else the machine does. This runs
`bench/inprocess.py --only WORKLOAD N` under callgrind for evenly spaced N (500, 1000, ...
2500) and reports the median of the steps between them, per unit: interpreter start-up and
imports cancel out, and so does the odd step that holds a full garbage collection or a dict
resize (one such step moved a two-point difference by 9% when an unrelated change shifted
where it fell). It needs Debian's valgrind.

    .venv/bin/python bench/instructions.py                                  # the compiled build
    .venv/bin/python bench/instructions.py --python .venv/bin/python        # the plain one

Instructions are not time (a cache miss or a syscall costs more than its count), and the
kernel's share is not counted at all: use it to compare Python-side changes, and
bench/run.py for what a client sees.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COLLECTED = re.compile(r"Collected : (\d+)")
# Per workload of inprocess.py: units (what is counted) per step of N, steps run per N given,
# and the unit's name. A broadcast is 1,000 deliveries, so 1 in 25 as many of them are run.
PER = {
    "setup": (1, 1.0, "connection set up"),
    "http": (1, 1.0, "HTTP trigger to 10 subscribers"),
    "fanout": (1000, 0.04, "delivery of a broadcast to 1,000 subscribers"),
}


def count(python: Path, workload: str, n: int) -> int:
    """Instructions of one `inprocess.py --only workload n` run (hash seed fixed)."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        str(python),
        str(HERE / "inprocess.py"),
        "--only",
        workload,
        str(n),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    match = COLLECTED.search(done.stderr)
    if done.returncode != 0 or match is None:
        sys.exit(f"callgrind run failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = ROOT / ".venv-compiled" / "bin" / "python"
    if not default.exists():
        default = ROOT / ".venv" / "bin" / "python"
    parser.add_argument("--python", type=Path, default=default, help=f"[{default}]")
    parser.add_argument("--workloads", default="setup,http,fanout", help="[setup,http,fanout]")
    parser.add_argument("--step", type=int, default=500, help="[500] N between two runs")
    parser.add_argument("--steps", type=int, default=4, help="[4] runs, less one")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    if args.step < 10 or args.steps < 1:
        parser.error("need --step >= 10 and --steps >= 1")
    print(f"# python: {args.python}", file=sys.stderr)
    for workload in args.workloads.split(","):
        units, scale, name = PER[workload]
        step = round(args.step * scale)
        totals = [count(args.python, workload, step * i) for i in range(1, args.steps + 2)]
        per_step = [(high - low) / step / units for low, high in itertools.pairwise(totals)]
        shown = ", ".join(f"{value:,.0f}" for value in per_step)
        print(
            f"{workload}: {statistics.median(per_step):,.0f} instructions per {name}"
            f" (steps: {shown})"
        )


if __name__ == "__main__":
    main()
