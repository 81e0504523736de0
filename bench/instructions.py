"""Instructions per connection set up and per HTTP API trigger, counted by callgrind.

The host under this VM is shared and its speed drifts by 2x within an hour, so two builds'
timings only compare when run side by side many times. Instructions do not drift: callgrind
counts the same total for the same binary and input whatever else the machine does. This runs
`bench/inprocess.py --only WORKLOAD N` under callgrind for two N and divides the difference, so
interpreter start-up and imports cancel out. It needs Debian's valgrind.

    .venv/bin/python bench/instructions.py                                  # the compiled build
    .venv/bin/python bench/instructions.py --python .venv/bin/python        # the plain one

Instructions are not time (a cache miss or a syscall costs more than its count), and the
kernel's share is not counted at all: use it to compare Python-side changes, and
bench/run.py for what a client sees.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COLLECTED = re.compile(r"Collected : (\d+)")


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
    parser.add_argument("--workloads", default="setup,http", help="[setup,http]")
    parser.add_argument("--n1", type=int, default=500)
    parser.add_argument("--n2", type=int, default=2500)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    if not 0 < args.n1 < args.n2:
        parser.error("need 0 < --n1 < --n2")
    print(f"# python: {args.python}", file=sys.stderr)
    for workload in args.workloads.split(","):
        low, high = count(args.python, workload, args.n1), count(args.python, workload, args.n2)
        per = (high - low) / (args.n2 - args.n1)
        unit = "connection set up" if workload == "setup" else "HTTP trigger to 10 subscribers"
        print(f"{workload}: {per:,.0f} instructions per {unit}")


if __name__ == "__main__":
    main()
