#!/usr/bin/env python3
"""The logged losses of two runs of one recipe, train.log by train.log.

Usage:
  .venv/bin/python tools/compare_train_logs.py RECIPE_DIR_A RECIPE_DIR_B

Pairs the values of every ``epoch N, batch M:`` and ``validation:`` line of each
``*/exp*/train.log`` under A with the same line of the same log under B (the lines must
match one to one) and prints the largest absolute and relative differences.
"""

import re
import sys
from pathlib import Path

LINE = re.compile(r"(epoch \d+, batch \d+|validation): (.*)")
VALUE = re.compile(r"(\w+)'?:? '?([-\d.]+)")


def logged_values(path: Path):
    out = []
    for line in path.read_text().splitlines():
        match = LINE.search(line)
        if match:
            current = match.group(2).split(" | lr")[0]
            out += [(match.group(1), name, float(v)) for name, v in VALUE.findall(current)]
    return out


def main() -> None:
    a, b = Path(sys.argv[1]), Path(sys.argv[2])
    worst, count = 0.0, 0
    for log in sorted(a.glob("*/exp*/train.log")):
        other = b / log.relative_to(a)
        if not other.exists():
            print(f"missing: {other}")
            continue
        va, vb = logged_values(log), logged_values(other)
        assert [x[:2] for x in va] == [x[:2] for x in vb], f"{log}: the logged lines differ"
        absolute = max((abs(x[2] - y[2]) for x, y in zip(va, vb)), default=0.0)
        relative = max((abs(x[2] - y[2]) / max(abs(x[2]), 1e-9) for x, y in zip(va, vb)),
                       default=0.0)
        worst, count = max(worst, relative), count + len(va)
        print(f"{log.relative_to(a)}: {len(va)} logged values, max abs diff {absolute:.2e}, "
              f"max rel diff {relative:.2e}")
    print(f"all: {count} values, max relative difference {worst:.2e}")


if __name__ == "__main__":
    main()
