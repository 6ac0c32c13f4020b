"""Instructions each decode executes against its floor, counted by valgrind's cachegrind.

    python3 scripts/bench_instructions.py PATH/TO/decode_instructions [REPEAT]

Runs the example once per mode (`none`, `scan`, `txml`, `json-value`, `json`) under
`valgrind --tool=cachegrind --cache-sim=no`, subtracts the `none` run (start-up and reading the
fixtures), divides by REPEAT (default 3) and prints instructions per decode and each decode's
ratio to its floor. Counts are exact and repeatable, whatever the machine's load; they are not
time (a cache miss costs more than an add), so they sit beside the timed ratios, not in their
place.
"""

import re
import subprocess
import sys

MODES = ("none", "scan", "txml", "json-value", "json")


def instructions(binary, mode, repeat):
    run = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            binary,
            mode,
            str(repeat),
        ],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        sys.exit(f"{mode}: exit {run.returncode}\n{run.stderr}")
    found = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    if not found:
        sys.exit(f"{mode}: no instruction count in valgrind's output\n{run.stderr}")
    return int(found.group(1).replace(",", ""))


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    binary = sys.argv[1]
    repeat = int(sys.argv[2]) if len(sys.argv) == 3 else 3
    total = {mode: instructions(binary, mode, repeat) for mode in MODES}
    per = {m: (total[m] - total["none"]) / repeat for m in MODES if m != "none"}
    print("500-line order, instructions per decode (cachegrind, start-up subtracted):")
    for mode, label in (
        ("scan", "floor: quick-xml event scan (tXML)"),
        ("txml", "decode tXML"),
        ("json-value", "floor: serde_json::Value parse (JSON)"),
        ("json", "decode JSON"),
    ):
        print(f"  {label:<40} {per[mode] / 1e6:8.2f} M")
    print(f"decode tXML / its floor:  {per['txml'] / per['scan']:.2f}x")
    print(f"decode JSON / its floor:  {per['json'] / per['json-value']:.2f}x")
    print(
        "decode tXML / (tXML floor + JSON floor): "
        f"{per['txml'] / (per['scan'] + per['json-value']):.2f}x"
        "  (reading the bytes, plus building the tree serde_json builds for the same message)"
    )


if __name__ == "__main__":
    main()
