"""OGIP spectra: a PHA file with its background (BKG), effective area (ARF) and redistribution (RMF) files.

Reading follows gammapy 2.1's ``OGIPDatasetReader`` (see CONVENTIONS.md):

- the PHA ``SPECTRUM`` HDU gives ``counts`` (``COUNTS``), ``mask_safe`` (``QUALITY == 0``), ``acceptance``
  (``BACKSCAL``; column or keyword), ``livetime`` (``EXPOSURE`` keyword, s) and the name (``OBS_ID``);
  its ``EBOUNDS`` gives the reco energy axis, ``REGION`` the ON region and ``GTI`` the good time intervals;
- ``BACKFILE`` gives ``counts_off`` and ``acceptance_off`` (its ``BACKSCAL``); alpha = BACKSCAL_on / BACKSCAL_off
  per bin;
- ``ANCRFILE`` gives the true energy axis (float64 edges) and exposure = ``SPECRESP`` x ``EXPOSURE`` [ARF unit x s];
- ``RESPFILE`` gives the matrix ``pdf[true, reco]``, with ``F_CHAN`` a 0-based channel index (as gammapy,
  which ignores ``TLMIN``); its float32 true-energy edges are checked against the ARF's and then replaced by them.

Referenced file names are resolved relative to the PHA file's directory (then, as gammapy does, relative to
the working directory).

Writing produces gammapy's names: ``name.fits`` plus ``name_bkg.fits``, ``name_arf.fits``, ``name_rmf.fits``
(referenced by ``BACKFILE``, ``ANCRFILE``, ``RESPFILE``), all written atomically together. Values gammapy's
OGIP files cannot hold are kept in extra columns of the PHA ``SPECTRUM`` table, which gammapy ignores:
``MASK_FIT`` (logical, True = bin used in the fit) and, for datasets without OFF counts, ``BACKGROUND``
(predicted background counts); ``META_TABLE`` goes in an extra HDU. The matrix and all energies are written in
float64 (gammapy writes float32), so a round trip is lossless.

The single files are read and built in `bayesdl4.io._ogip_files`; this module names them and assembles
the dataset.
"""

import logging
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits

from ..errors import DataFileNotFoundError, DataFormatError, GeometryMismatchError
from ..irf import EDispKernel
from ..maps import RegionGeom, RegionNDMap
from ._fits import check_header_text, write_hdulists
from ._ogip_files import (
    arf_hdulist,
    pha_hdulist,
    read_arf,
    read_pha,
    read_rmf,
    rmf_hdulist,
    spectrum_header,
)
from .gadf_region import _build_dataset, _pick_class
from .provenance import record_read

__all__ = [
    "ogip_filenames",
    "read_ogip_spectrum",
    "write_ogip_spectrum",
    "read_pha",
    "read_arf",
    "read_rmf",
]

log = logging.getLogger(__name__)

_NONE_NAMES = {"", "NONE", "N/A"}


# ---------------------------------------------------------------------------------------------- names
def ogip_filenames(filename):
    """Paths gammapy's OGIP writer uses: the PHA ``filename`` and its ``_bkg``, ``_arf``, ``_rmf`` siblings.

    Returns
    -------
    paths : dict
        Keys ``"pha"``, ``"bkg"``, ``"arf"``, ``"rmf"``.
    """
    path = Path(filename)
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    return {
        "pha": path,
        "bkg": path.with_name(f"{stem}_bkg{suffix}"),
        "arf": path.with_name(f"{stem}_arf{suffix}"),
        "rmf": path.with_name(f"{stem}_rmf{suffix}"),
    }


def _referenced_file(pha_path, header, keyword, required):
    """The file a PHA keyword (ANCRFILE, BACKFILE, RESPFILE) points to, or None."""
    value = header.get(keyword)
    value = None if value is None else str(value).strip()
    if value is None or value.upper() in _NONE_NAMES:
        if required:
            raise DataFormatError(
                f"{pha_path}: SPECTRUM header has no {keyword} keyword (or it is 'none'); "
                f"set {keyword} to the name of the file beside the PHA file"
            )
        return None
    if "[" in value:  # OGIP allows "file.fits[ext]": the extension is found by name anyway
        value = value.split("[", 1)[0]
    ref = Path(value)
    if ref.is_absolute():
        candidates = [ref]
    else:
        candidates = [pha_path.parent / ref, ref]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataFileNotFoundError(
        f"{pha_path}: {keyword} = {value!r} but {candidates[0]} does not exist; put the file beside the PHA "
        f"file or correct the {keyword} keyword"
    )


# ---------------------------------------------------------------------------------------------- reading
def read_ogip_spectrum(filename, name=None, dataset_class=None, checksum=False):
    """Read an OGIP PHA file and the BKG, ARF and RMF files it references.

    Parameters
    ----------
    filename : str or Path
        The PHA file.
    name : str, optional
        Dataset name; default ``str(OBS_ID)`` as gammapy (the file name stem if there is no OBS_ID). A
        stacked PHA with repeated OBS_ID keywords gets ``str(list_of_ids)``, gammapy's name for it.
    dataset_class : type, optional
        The class ``read`` was called on. A `SpectrumDatasetOnOff` (subclass) needs a BACKFILE.
    checksum : bool
        Verify the ``CHECKSUM`` / ``DATASUM`` keywords of every HDU of the four files that has them.

    Returns
    -------
    dataset : `SpectrumDatasetOnOff` if the PHA has a BACKFILE, else `SpectrumDataset`.
    """
    path = Path(filename)
    pha = read_pha(path, "PHA file", checksum)
    header = pha["header"]
    n = pha["counts"].size

    bkg_path = _referenced_file(path, header, "BACKFILE", required=False)
    cls = _pick_class(dataset_class, bkg_path is not None, path, "no BACKFILE keyword")
    arf_path = _referenced_file(path, header, "ANCRFILE", required=True)
    rmf_path = _referenced_file(path, header, "RESPFILE", required=False)

    if "EXPOSURE" not in header:
        raise DataFormatError(
            f"{path}: SPECTRUM header has no EXPOSURE keyword (the livetime in s)"
        )
    try:
        livetime_s = float(header["EXPOSURE"])
    except (TypeError, ValueError) as exc:
        raise DataFormatError(
            f"{path}: EXPOSURE keyword {header['EXPOSURE']!r} is not a number"
        ) from exc
    if not np.isfinite(livetime_s) or livetime_s <= 0:
        raise DataFormatError(
            f"{path}: EXPOSURE keyword is {livetime_s} s; it must be finite and > 0 (the exposure "
            "is ARF x EXPOSURE, so 0 predicts no counts at all)"
        )
    livetime = livetime_s * u.s

    energy_true, specresp = read_arf(arf_path, f"ARF file (ANCRFILE of {path.name})", checksum)

    edisp_parts = None
    if rmf_path is not None:
        rmf_true, rmf_reco, matrix = read_rmf(
            rmf_path, f"RMF file (RESPFILE of {path.name})", checksum
        )
        if rmf_reco.nbin != n:
            raise GeometryMismatchError(
                f"{path} has {n} channels but its RMF {rmf_path} has {rmf_reco.nbin} (DETCHANS/EBOUNDS); "
                "they must describe the same channels"
            )
        if not rmf_true.is_allclose(energy_true, rtol=1e-5):
            raise GeometryMismatchError(
                f"RMF {rmf_path} true-energy binning ({rmf_true.nbin} bins, {rmf_true.bounds}) does not match "
                f"the ARF {arf_path} ({energy_true.nbin} bins, {energy_true.bounds})"
            )
        edisp_parts = (rmf_reco, matrix)

    energy_axis = pha["energy_axis"]
    if energy_axis is None:
        if edisp_parts is None:
            raise DataFormatError(
                f"{path}: no EBOUNDS HDU and no RESPFILE to take the channel energies from; add an EBOUNDS HDU"
            )
        energy_axis = edisp_parts[0]
    elif edisp_parts is not None and not edisp_parts[0].is_allclose(energy_axis, rtol=1e-5):
        raise GeometryMismatchError(
            f"EBOUNDS of {path} and of its RMF {rmf_path} differ; they must describe the same channels"
        )

    geom = RegionGeom(pha["region"], [energy_axis], pha["wcs"])
    exposure = RegionNDMap(
        RegionGeom(None, [energy_true]), specresp.value * livetime_s, unit=specresp.unit * u.s
    )
    kwargs = {
        "counts": RegionNDMap(geom, pha["counts"]),
        "exposure": exposure,
        "mask_safe": RegionNDMap(geom, pha["quality"] == 0),
        "livetime": livetime,
        "gti": pha["gti"],
        "meta_table": pha["meta_table"],
    }
    if pha["mask_fit"] is not None:
        kwargs["mask_fit"] = RegionNDMap(geom, pha["mask_fit"])
    if edisp_parts is not None:
        kwargs["edisp"] = EDispKernel((energy_true, energy_axis), edisp_parts[1])
    obs_id = header.get("OBS_ID")
    if name is None:
        name = str(obs_id) if obs_id is not None else path.name.split(".")[0]
    kwargs["name"] = str(name)
    kwargs["meta"] = {"obs_id": obs_id} if obs_id is not None else {}
    kwargs["meta"]["filenames"] = [
        str(p) for p in (path, bkg_path, arf_path, rmf_path) if p is not None
    ]

    if bkg_path is not None:
        bkg = read_pha(bkg_path, f"BKG file (BACKFILE of {path.name})", checksum)
        if bkg["counts"].size != n:
            raise GeometryMismatchError(
                f"{path} has {n} channels but its BKG file {bkg_path} has {bkg['counts'].size}; "
                "they must describe the same channels"
            )
        if bkg["energy_axis"] is not None and not bkg["energy_axis"].is_allclose(
            energy_axis, rtol=1e-5
        ):
            raise GeometryMismatchError(f"EBOUNDS of {path} and of its BKG file {bkg_path} differ")
        safe = pha["quality"] == 0
        for values, file in ((bkg["backscal"], bkg_path), (pha["backscal"], path)):
            zero = np.flatnonzero(safe & (values == 0))
            if zero.size:
                raise DataFormatError(
                    f"{file}: BACKSCAL is 0 in channels {zero[:10].tolist()}, which the QUALITY "
                    f"column of {path.name} marks as good; alpha = BACKSCAL_on / BACKSCAL_off would "
                    "be 0 or undefined and these channels would drop out of the statistic. Fix "
                    "BACKSCAL or set QUALITY = 1 in those channels"
                )
        geom_off = RegionGeom(bkg["region"], [energy_axis], bkg["wcs"])
        kwargs["counts_off"] = RegionNDMap(geom_off, bkg["counts"])
        kwargs["acceptance"] = RegionNDMap(geom, pha["backscal"])
        kwargs["acceptance_off"] = RegionNDMap(geom_off, bkg["backscal"])
    elif pha["background"] is not None:
        kwargs["background"] = RegionNDMap(geom, pha["background"])

    dataset = _build_dataset(cls, kwargs, path)
    return record_read(dataset, [path, bkg_path, arf_path, rmf_path])


# ---------------------------------------------------------------------------------------------- writing
def ogip_hdulists(dataset, filename):
    """The OGIP files of a spectrum dataset as ``{path: HDUList}`` (nothing is written)."""
    from ..datasets.spectrum import SpectrumDatasetOnOff

    if dataset.counts is None:
        raise DataFormatError(f"dataset {dataset.name!r}: cannot write OGIP without counts")
    check_header_text(
        dataset.name,
        "dataset name",
        f"it is written as the OBS_ID keyword of {filename}: rename the dataset "
        "(dataset.name = ...) before writing",
    )
    for key in ("telescop", "instrume"):
        check_header_text(
            (dataset.meta or {}).get(key, ""), f"meta[{key!r}]", f"change it before writing {filename}"
        )
    if dataset.exposure is None:
        raise DataFormatError(
            f"dataset {dataset.name!r}: OGIP needs an exposure (the ARF); set dataset.exposure or write format='gadf'"
        )
    if len(dataset.counts.geom.axes) != 1 or len(dataset.exposure.geom.axes) != 1:
        raise DataFormatError(
            f"dataset {dataset.name!r}: OGIP holds a single energy axis per spectrum"
        )
    names = ogip_filenames(filename)
    is_onoff = isinstance(dataset, SpectrumDatasetOnOff) and dataset.counts_off is not None
    if not is_onoff:
        names["bkg"] = None
        log.warning(
            "dataset %r has no OFF counts: its OGIP files have no BACKFILE, and gammapy 2.1 reads "
            "them as an ON/OFF dataset without OFF counts that it cannot evaluate (bayesdl4 reads "
            "them); write format='gadf' for files gammapy uses",
            dataset.name,
        )
    if dataset.edisp is None:
        names["rmf"] = None
    if dataset.livetime is not None:
        livetime_s = float(dataset.livetime.to_value("s"))
        if not livetime_s > 0:
            raise DataFormatError(
                f"dataset {dataset.name!r}: livetime is {livetime_s} s; OGIP needs it > 0"
            )
    else:
        livetime_s = 1.0  # as the Fermi-LAT files: EXPOSURE = 1 s, the ARF holds the exposure
        log.info(
            "dataset %r has no livetime: writing EXPOSURE = 1 s and the exposure in the ARF",
            dataset.name,
        )

    n = dataset.counts.data.size
    geom = dataset.counts.geom
    extra = []
    if dataset.mask_fit is not None:
        extra.append(
            fits.Column(
                name="MASK_FIT", format="L", array=dataset.mask_fit.data.reshape(n).astype(bool)
            )
        )
    if is_onoff:
        backscal_on = dataset.acceptance.data.reshape(n)
    else:
        backscal_on = np.ones(n)
        if dataset.background is not None:
            extra.append(
                fits.Column(name="BACKGROUND", format="D", array=dataset.background.data.reshape(n))
            )

    out = {}
    header = spectrum_header(dataset, n, "TOTAL", livetime_s, names)
    out[names["pha"]] = pha_hdulist(
        dataset,
        dataset.counts.data.reshape(n),
        backscal_on,
        header,
        geom,
        extra,
        dataset.gti,
        dataset.meta_table,
    )
    if is_onoff:
        header = spectrum_header(dataset, n, "BKG", livetime_s, names)
        out[names["bkg"]] = pha_hdulist(
            dataset,
            dataset.counts_off.data.reshape(n),
            dataset.acceptance_off.data.reshape(n),
            header,
            dataset.counts_off.geom,
        )
    out[names["arf"]] = arf_hdulist(dataset.exposure, livetime_s)
    if dataset.edisp is not None:
        out[names["rmf"]] = rmf_hdulist(dataset.edisp, geom.axis("energy"))
    return out


def write_ogip_spectrum(dataset, filename, overwrite=False):
    """Write a spectrum dataset as OGIP PHA + BKG + ARF + RMF files, all or nothing.

    Parameters
    ----------
    dataset : `SpectrumDataset` or `SpectrumDatasetOnOff`
    filename : str or Path
        The PHA file; the others are named ``<stem>_bkg``, ``<stem>_arf``, ``<stem>_rmf`` beside it.
    overwrite : bool
        Replace existing files. Without it an existing target raises `FileExistsError` and nothing is written.

    Returns
    -------
    paths : list of Path
        The files written (PHA first).
    """
    return write_hdulists(ogip_hdulists(dataset, filename), overwrite=overwrite)
