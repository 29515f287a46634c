"""python -m benchmarks <suite> [--quick] [--json PATH]

suites: step, sequence, streams, coldstart, memory, threads, ray, layers, real, accuracy, all.

Prints a table and writes a JSON report with the machine's details (CPU, versions, thread settings).
"""

import argparse
import os
import sys

from . import harness

harness.pin_threads()


def main(argv=None):
    from .suites import SUITES

    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("suite", choices=sorted(SUITES) + ["all"])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and rounds (the step suite: under 2 minutes)")
    ap.add_argument("--json", default=None, help="report path (default: benchmarks-<suite>.json in the current "
                                                 "directory)")
    args = ap.parse_args(argv)
    harness.pin_threads()
    info = harness.machine_info()
    print(f"# {info['cpu']}, {info['cores']} cores, SIMD {','.join(info.get('simd', []))}; "
          f"{', '.join(f'{k} {v}' for k, v in info['versions'].items())}; threads pinned to 1; {info['date']}")
    names = sorted(SUITES) if args.suite == "all" else [args.suite]
    for name in names:
        rows, text = SUITES[name](quick=args.quick)
        print()
        print(text)
        path = args.json if (args.json and len(names) == 1) else os.path.join(os.getcwd(), f"benchmarks-{name}.json")
        harness.write_json(path, name, rows, info)
        print(f"(report: {path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
