"""The ``bayesdl4`` command line."""

import argparse
import logging
import sys

__all__ = ["main"]


def _demo(args):
    from .demo import run_demo

    run_demo(output=args.output, draws=args.draws, tune=args.tune, chains=args.chains, seed=args.seed,
             overwrite=args.overwrite)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bayesdl4", description="Bayesian analysis of gamma-ray DL4 data")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="simulate ON/OFF spectra, fit, sample, write FITS + netCDF + PNG")
    demo.add_argument("--output", default="bayesdl4-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--draws", type=int, default=1000)
    demo.add_argument("--tune", type=int, default=1000)
    demo.add_argument("--chains", type=int, default=4)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--overwrite", action="store_true", help="replace files in an existing output folder")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        return args.func(args)
    except FileExistsError as exc:
        print(f"bayesdl4: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
