"""``stack_reduce`` of 100 map datasets read from files: bayesdl4 against gammapy 2.1.

Each dataset is 100 x 100 pixels with 10 reconstructed and 20 true energy bins, a PSF and an
energy-dispersion kernel map on gammapy's default 0.2 deg IRF grid, a safe threshold that varies
from run to run, and a GTI. The files are written once (by bayesdl4, in gammapy 2.1's layout) and
read by both sides. Each side runs in its own process, streaming: the stack and the dataset just
read are in memory, never all datasets (bayesdl4: ``stack(MapDataset.read(f) for f in files)``;
gammapy: ``to_masked`` of the first, then ``stack`` of each one read, its documented loop, since
its ``Datasets.stack_reduce`` needs all datasets loaded).

Printed: wall time per side and the ratio gammapy / bayesdl4, and the peak memory above the
process's footprint after imports (``ru_maxrss``), also in units of one dataset's arrays.

Usage::

    .venv/bin/python benchmarks/bench_stack.py [--n 100] [--npix 100] [--folder DIR] [--json FILE]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCHMARKS_DIR = Path(__file__).resolve().parent


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def make_files(folder: Path, n: int, npix: int) -> list[Path]:
    """``n`` random map datasets written to ``folder`` (reused when already there)."""
    from astropy import units as u
    from astropy.table import Table

    from bayesdl4.datasets import MapDataset
    from bayesdl4.irf import EDispKernel, EDispKernelMap, PSFMap
    from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"run{i:03d}.fits" for i in range(n)]
    if all(p.exists() for p in paths):
        return paths
    rng = np.random.default_rng(0)
    energy = MapAxis.from_energy_bounds(0.5 * u.TeV, 100 * u.TeV, 10, name="energy")
    energy_true = MapAxis.from_energy_bounds(0.3 * u.TeV, 200 * u.TeV, 20, name="energy_true")
    geom = WcsGeom.create(
        skydir=(83.63, 22.01), binsz=0.02, npix=(npix, npix), frame="icrs", axes=[energy]
    )
    template = MapDataset.create(geom, energy_axis_true=energy_true, name="template")
    for i, path in enumerate(paths):
        livetime = rng.uniform(1e3, 3e3)
        area = 1e5 * (1 - np.exp(-energy_true.center.to_value("TeV") / rng.uniform(0.3, 1)))
        exposure = template.exposure.copy(
            data=(area * livetime)[:, None, None] * np.ones(template.exposure.data.shape)
        )
        exposure.meta["livetime"] = f"{livetime!r} s"
        psf = PSFMap.from_gauss(
            energy_true,
            sigma=rng.uniform(0.05, 0.1) * u.deg,
            geom=template.psf.psf_map.geom.to_image(),
        )
        psf.exposure_map.data[...] = (area * livetime)[:, None, None, None]
        kernel = EDispKernel.from_gauss(energy_true, energy, sigma=rng.uniform(0.1, 0.2))
        edisp = EDispKernelMap.from_edisp_kernel(
            kernel, geom=template.edisp.edisp_map.geom.to_image()
        )
        edisp.exposure_map.data[...] = (area * livetime)[:, None, None, None]
        safe = np.zeros(geom.data_shape, dtype=bool)
        safe[int(rng.integers(0, 4)) :] = True
        start = 1e4 * i
        gti = Table(
            {"START": [start] * u.s, "STOP": [start + livetime] * u.s},
            meta={"MJDREFI": 51910, "MJDREFF": 7.4287037e-4, "TIMESYS": "tt"},
        )
        dataset = MapDataset(
            counts=WcsNDMap(geom, rng.poisson(2.0, geom.data_shape).astype(np.float32)),
            background=WcsNDMap(geom, rng.uniform(0.5, 3, geom.data_shape).astype(np.float32)),
            exposure=exposure,
            psf=psf,
            edisp=edisp,
            mask_safe=WcsNDMap(geom, safe),
            gti=gti,
            meta_table=Table({"OBS_ID": [i]}),
            name=f"run{i:03d}",
        )
        dataset.write(path, overwrite=True)
    return paths


def dataset_nbytes(dataset) -> int:
    """Bytes of a dataset's arrays (maps and IRF maps with their exposure)."""
    total = 0
    for attribute in ("counts", "background", "exposure", "mask_safe", "mask_fit", "counts_off"):
        m = getattr(dataset, attribute, None)
        total += 0 if m is None else m.data.nbytes
    for attribute in ("psf", "edisp"):
        irf = getattr(dataset, attribute, None)
        if irf is not None:
            irf_map = irf.psf_map if attribute == "psf" else irf.edisp_map
            total += irf_map.data.nbytes + (
                0 if irf.exposure_map is None else irf.exposure_map.data.nbytes
            )
    return total


def run_side(side: str, paths: list[Path]) -> dict:
    """Stack the files on one side; returns time, peak memory above the post-import footprint."""
    if side == "bayesdl4":
        from bayesdl4.datasets import MapDataset
        from bayesdl4.datasets.stack import stack

        def read(path):
            return MapDataset.read(path)

        def reduce(paths):
            return stack(read(p) for p in paths)
    else:
        from gammapy.datasets import MapDataset

        def read(path):
            return MapDataset.read(path)

        def reduce(paths):
            stacked = read(paths[0]).to_masked(name="stacked")
            for path in paths[1:]:
                stacked.stack(read(path))
            return stacked

    one = dataset_nbytes(read(paths[0])) / 2**20
    base = _rss_mb()
    start = time.perf_counter()
    stacked = reduce(paths)
    elapsed = time.perf_counter() - start
    peak = _rss_mb()
    return {
        "side": side,
        "time_s": elapsed,
        "peak_above_imports_mb": peak - base,
        "dataset_mb": one,
        "counts_total": float(np.sum(stacked.counts.data)),
        "gti_rows": len(stacked.gti) if side == "bayesdl4" else len(stacked.gti.table),
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--npix", type=int, default=100)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--side", choices=["bayesdl4", "gammapy"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = (
        args.folder or Path(tempfile.gettempdir()) / f"bayesdl4-bench-stack-{args.n}-{args.npix}"
    )
    if args.side:  # the worker of one side
        paths = sorted(folder.glob("run*.fits"))[: args.n]
        print(json.dumps(run_side(args.side, paths)))
        return
    start = time.perf_counter()
    make_files(folder, args.n, args.npix)
    print(
        f"{args.n} datasets of {args.npix} x {args.npix} px in {folder} (made in {time.perf_counter() - start:.0f} s)"
    )
    results = {}
    for side in ("bayesdl4", "gammapy"):
        command = [
            sys.executable,
            __file__,
            "--side",
            side,
            "--n",
            str(args.n),
            "--npix",
            str(args.npix),
            "--folder",
            str(folder),
        ]
        done = subprocess.run(command, capture_output=True, text=True, cwd=BENCHMARKS_DIR.parent)
        if done.returncode:
            print(f"{side} failed:\n{done.stderr[-2000:]}")
            continue
        results[side] = json.loads(done.stdout.strip().splitlines()[-1])
    for side, r in results.items():
        print(
            f"{side:9s} {r['time_s']:7.1f} s   peak +{r['peak_above_imports_mb']:7.1f} MB "
            f"({r['peak_above_imports_mb'] / r['dataset_mb']:.1f} datasets of {r['dataset_mb']:.1f} MB)   "
            f"stacked counts {r['counts_total']:.0f}, GTI rows {r['gti_rows']}"
        )
    if len(results) == 2:
        ours, theirs = results["bayesdl4"], results["gammapy"]
        assert ours["counts_total"] == theirs["counts_total"], "the two stacks differ"
        print(f"time ratio gammapy / bayesdl4: {theirs['time_s'] / ours['time_s']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
