"""The ``rnnjit`` command line. For now: ``rnnjit info MODEL`` and ``rnnjit --version``."""

import argparse
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(prog="rnnjit", description="CPU inference engine for recurrent networks")
    parser.add_argument("--version", action="store_true", help="print the version and call layer, then exit")
    sub = parser.add_subparsers(dest="command")
    info = sub.add_parser("info", help="describe a model file")
    info.add_argument("model", help="path to a model file (.npz native format)")
    args = parser.parse_args(argv)

    import engine

    if args.version:
        layer = "compiled (Cython)" if engine.COMPILED else "pure-Python twin"
        print(f"rnnjit {engine.__version__}, call layer: {layer}")
        return 0
    if args.command == "info":
        try:
            model = engine.load(args.model)
        except (engine.RnnjitError, FileNotFoundError) as exc:
            print(f"rnnjit: {exc}", file=sys.stderr)
            return 2
        print(model.summary())
        return 0
    parser.print_help()
    return 1


if __name__ == "__main__":
    sys.exit(main())
