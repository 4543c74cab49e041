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
"""

import logging
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from ..errors import DataFileNotFoundError, DataFormatError, GeometryMismatchError
from ..irf import EDispKernel
from ..maps import RegionGeom, RegionNDMap
from .gadf_region import (
    _pick_class,
    column_unit,
    get_column,
    get_hdu,
    hdu_names,
    make_axis,
    open_fits,
    region_from_table_hdu,
    region_to_table_hdu,
    write_hdulists,
)

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
_QUALITY_BAD = 1  # OGIP: 0 good, 1 bad (set by software); gammapy treats any non-zero as bad


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


# ---------------------------------------------------------------------------------------------- readers
def _bad_bins(values, allow_negative=False):
    bad = ~np.isfinite(values)
    if not allow_negative:
        bad |= values < 0
    return np.flatnonzero(bad)[:10].tolist()


def _ebounds_axis(hdul, path):
    hdu = hdul["EBOUNDS"]
    lo = get_column(hdu, "E_MIN", path).astype(float)
    hi = get_column(hdu, "E_MAX", path).astype(float)
    if lo.size == 0:
        raise DataFormatError(f"{path}: EBOUNDS HDU is empty")
    return make_axis(np.append(lo, hi[-1]), column_unit(hdu, "E_MIN"), "energy", path, "EBOUNDS")


def read_pha(filename, role="PHA file"):
    """Contents of an OGIP PHA (or BKG) file as plain arrays.

    Returns
    -------
    pha : dict
        ``counts`` (float64, (n_channels,)), ``backscal``, ``quality``, ``mask_fit`` (or None),
        ``background`` (or None), ``header`` (SPECTRUM header as a dict), ``energy_axis`` (from EBOUNDS, or
        None), ``region``, ``wcs``, ``gti`` (Table or None), ``meta_table`` (Table or None).
    """
    path = Path(filename)
    with open_fits(path, role) as hdul:
        hdu = get_hdu(
            hdul,
            "SPECTRUM",
            path,
            hint="An OGIP PHA file holds its counts in a SPECTRUM extension.",
        )
        header = dict(hdu.header)
        obs_ids = [card.value for card in hdu.header.cards if card.keyword == "OBS_ID"]
        if len(obs_ids) > 1:  # stacked spectra repeat OBS_ID; astropy (and so gammapy) reads a list
            header["OBS_ID"] = obs_ids
        if hdu.columns is None or hdu.data is None:
            raise DataFormatError(f"{path}: SPECTRUM HDU has no table data")
        names = [c.upper() for c in hdu.columns.names]
        if "COUNTS" not in names:
            hint = " (a RATE spectrum: convert it to COUNTS x EXPOSURE)" if "RATE" in names else ""
            raise DataFormatError(
                f"{path}: SPECTRUM HDU has no COUNTS column{hint}; columns: {hdu.columns.names}"
            )
        counts = np.asarray(hdu.data.field("COUNTS"))
        if counts.ndim != 1:
            raise DataFormatError(
                f"{path}: SPECTRUM column COUNTS has shape {counts.shape}; type II PHA files (several spectra "
                "in one table) are not supported: split them into one file per spectrum"
            )
        counts = counts.astype(np.float64)
        n = counts.size
        bad = _bad_bins(counts)
        if bad:
            raise DataFormatError(
                f"{path}: SPECTRUM column COUNTS has negative or non-finite values in channels {bad}; "
                "counts must be >= 0"
            )
        detchans = header.get("DETCHANS")
        if detchans is not None and int(detchans) != n:
            raise GeometryMismatchError(
                f"{path}: SPECTRUM has {n} rows but DETCHANS = {detchans}; the file is inconsistent"
            )
        out = {"counts": counts, "header": header}

        quality = get_column(hdu, "QUALITY", path, required=False)
        if quality is None:
            quality = np.full(n, int(header.get("QUALITY", 0)))
        out["quality"] = np.asarray(quality).astype(np.int64).reshape(n)

        backscal = get_column(hdu, "BACKSCAL", path, required=False)
        if backscal is None:
            backscal = np.full(n, float(header.get("BACKSCAL", 1.0)))
        backscal = np.asarray(backscal, dtype=np.float64).reshape(n)
        bad = _bad_bins(backscal)
        if bad:
            raise DataFormatError(
                f"{path}: BACKSCAL has negative or non-finite values in channels {bad}; BACKSCAL must be >= 0"
            )
        out["backscal"] = backscal

        mask_fit = get_column(hdu, "MASK_FIT", path, required=False)
        out["mask_fit"] = None if mask_fit is None else np.asarray(mask_fit).astype(bool).reshape(n)
        background = get_column(hdu, "BACKGROUND", path, required=False)
        out["background"] = (
            None if background is None else np.asarray(background, np.float64).reshape(n)
        )

        out["energy_axis"] = _ebounds_axis(hdul, path) if "EBOUNDS" in hdul else None
        if out["energy_axis"] is not None and out["energy_axis"].nbin != n:
            raise GeometryMismatchError(
                f"{path}: EBOUNDS has {out['energy_axis'].nbin} channels but SPECTRUM has {n}; "
                "the file is inconsistent"
            )
        out["region"], out["wcs"] = (None, None)
        if "REGION" in hdul:
            out["region"], out["wcs"] = region_from_table_hdu(hdul["REGION"], path)
        out["gti"] = Table.read(hdul["GTI"]) if "GTI" in hdul else None
        out["meta_table"] = Table.read(hdul["META_TABLE"]) if "META_TABLE" in hdul else None
    return out


def read_arf(filename, role="ARF file"):
    """True energy axis (float64 edges) and effective area of an OGIP ARF.

    Returns
    -------
    energy_axis_true : `MapAxis`
    specresp : `~astropy.units.Quantity`, shape (n_energy_true,)
    """
    path = Path(filename)
    with open_fits(path, role) as hdul:
        hdu = get_hdu(
            hdul,
            "SPECRESP",
            path,
            hint="An OGIP ARF holds the effective area in a SPECRESP extension.",
        )
        lo = get_column(hdu, "ENERG_LO", path).astype(float)
        hi = get_column(hdu, "ENERG_HI", path).astype(float)
        if lo.size == 0:
            raise DataFormatError(f"{path}: SPECRESP HDU is empty")
        axis = make_axis(
            np.append(lo, hi[-1]), column_unit(hdu, "ENERG_LO"), "energy_true", path, "SPECRESP"
        )
        values = get_column(hdu, "SPECRESP", path).astype(np.float64)
        bad = _bad_bins(values)
        if bad:
            raise DataFormatError(
                f"{path}: SPECRESP column SPECRESP has negative or non-finite (NaN) values in bins {bad}; "
                "the effective area must be finite and >= 0"
            )
        return axis, u.Quantity(values, column_unit(hdu, "SPECRESP"))


def read_rmf(filename, role="RMF file"):
    """Redistribution matrix of an OGIP RMF.

    Returns
    -------
    energy_axis_true : `MapAxis`
        From ``ENERG_LO`` / ``ENERG_HI`` (often float32).
    energy_axis : `MapAxis`
        From the RMF's ``EBOUNDS``.
    matrix : ndarray, shape (n_energy_true, n_channels)
        ``pdf[true, reco]``.
    """
    path = Path(filename)
    with open_fits(path, role) as hdul:
        hdu = get_hdu(
            hdul, ("MATRIX", "SPECRESP MATRIX"), path, hint="An OGIP RMF holds a MATRIX extension."
        )
        if "EBOUNDS" not in hdul:
            raise DataFormatError(
                f"{path}: RMF has no EBOUNDS HDU (HDUs present: {hdu_names(hdul)})"
            )
        energy_axis = _ebounds_axis(hdul, path)
        lo = get_column(hdu, "ENERG_LO", path).astype(float)
        hi = get_column(hdu, "ENERG_HI", path).astype(float)
        axis_true = make_axis(
            np.append(lo, hi[-1]), column_unit(hdu, "ENERG_LO"), "energy_true", path, hdu.name
        )
        detchans = int(hdu.header.get("DETCHANS", energy_axis.nbin))
        if detchans != energy_axis.nbin:
            raise GeometryMismatchError(
                f"{path}: MATRIX DETCHANS = {detchans} but EBOUNDS has {energy_axis.nbin} channels"
            )
        colnames = [c.upper() for c in hdu.columns.names]
        for column in ("N_GRP", "F_CHAN", "N_CHAN", "MATRIX"):
            if column not in colnames:
                raise DataFormatError(
                    f"{path}: {hdu.name} HDU has no column {column!r} (columns: {hdu.columns.names})"
                )
        fchan_index = colnames.index("F_CHAN") + 1
        tlmin = hdu.header.get(f"TLMIN{fchan_index}")
        if tlmin not in (None, 0):
            log.warning(
                "%s: F_CHAN has TLMIN%s = %s; it is read as a 0-based index, as gammapy does",
                path,
                fchan_index,
                tlmin,
            )
        n_grp = np.asarray(hdu.data.field("N_GRP"))
        f_chan = hdu.data.field("F_CHAN")
        n_chan = hdu.data.field("N_CHAN")
        values = hdu.data.field("MATRIX")
        matrix = np.zeros((axis_true.nbin, detchans), dtype=np.float64)
        for i in range(axis_true.nbin):
            groups = int(n_grp[i])
            if groups == 0:
                continue
            starts = np.atleast_1d(np.asarray(f_chan[i])).astype(np.int64)
            widths = np.atleast_1d(np.asarray(n_chan[i])).astype(np.int64)
            row = np.atleast_1d(np.asarray(values[i], dtype=np.float64))
            pos = 0
            for k in range(groups):
                start, width = starts[k], widths[k]
                if start < 0 or start + width > detchans or pos + width > row.size:
                    raise DataFormatError(
                        f"{path}: MATRIX row {i} group {k} (F_CHAN={start}, N_CHAN={width}) lies outside the "
                        f"{detchans} channels or the row's {row.size} matrix values"
                    )
                matrix[i, start : start + width] = row[pos : pos + width]
                pos += width
        bad = _bad_bins(matrix.ravel())
        if bad:
            raise DataFormatError(
                f"{path}: MATRIX has negative or non-finite entries; the RMF is corrupt"
            )
    return axis_true, energy_axis, matrix


def read_ogip_spectrum(filename, name=None, dataset_class=None):
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

    Returns
    -------
    dataset : `SpectrumDatasetOnOff` if the PHA has a BACKFILE, else `SpectrumDataset`.
    """
    path = Path(filename)
    pha = read_pha(path, "PHA file")
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
    if not np.isfinite(livetime_s) or livetime_s < 0:
        raise DataFormatError(
            f"{path}: EXPOSURE keyword is {livetime_s} s; it must be finite and >= 0"
        )
    livetime = livetime_s * u.s

    energy_true, specresp = read_arf(arf_path, f"ARF file (ANCRFILE of {path.name})")

    edisp_parts = None
    if rmf_path is not None:
        rmf_true, rmf_reco, matrix = read_rmf(rmf_path, f"RMF file (RESPFILE of {path.name})")
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
    kwargs["meta"]["filenames"] = [str(p) for p in (path, bkg_path, arf_path, rmf_path) if p is not None]

    if bkg_path is not None:
        bkg = read_pha(bkg_path, f"BKG file (BACKFILE of {path.name})")
        if bkg["counts"].size != n:
            raise GeometryMismatchError(
                f"{path} has {n} channels but its BKG file {bkg_path} has {bkg['counts'].size}; "
                "they must describe the same channels"
            )
        if bkg["energy_axis"] is not None and not bkg["energy_axis"].is_allclose(
            energy_axis, rtol=1e-5
        ):
            raise GeometryMismatchError(f"EBOUNDS of {path} and of its BKG file {bkg_path} differ")
        geom_off = RegionGeom(bkg["region"], [energy_axis], bkg["wcs"])
        kwargs["counts_off"] = RegionNDMap(geom_off, bkg["counts"])
        kwargs["acceptance"] = RegionNDMap(geom, pha["backscal"])
        kwargs["acceptance_off"] = RegionNDMap(geom_off, bkg["backscal"])
    elif pha["background"] is not None:
        kwargs["background"] = RegionNDMap(geom, pha["background"])

    try:
        return cls(**kwargs)
    except (DataFormatError, GeometryMismatchError) as exc:
        raise type(exc)(f"{path}: {exc}") from exc


# ---------------------------------------------------------------------------------------------- writers
def _spectrum_header(dataset, n_channels, hduclas2, livetime_s, names):
    meta = dataset.meta or {}
    header = fits.Header()
    header["TELESCOP"] = str(meta.get("telescop", "unknown"))
    header["INSTRUME"] = str(meta.get("instrume", "unknown"))
    header["FILTER"] = "None"
    header["HDUCLASS"] = ("OGIP", "format conforms to OGIP standard")
    header["HDUCLAS1"] = "SPECTRUM"
    header["HDUCLAS2"] = hduclas2
    header["HDUCLAS3"] = "COUNT"
    header["HDUCLAS4"] = "TYPE:1"
    header["HDUVERS"] = "1.2.1"
    header["CHANTYPE"] = "PHA"
    header["DETCHANS"] = n_channels
    header["POISSERR"] = True
    header["CORRFILE"] = ""
    header["CORRSCAL"] = ""
    header["AREASCAL"] = 1.0
    header["EXPOSURE"] = (livetime_s, "[s] livetime")
    header["OBS_ID"] = dataset.name  # gammapy names a dataset read from OGIP by str(OBS_ID)
    header["ANCRFILE"] = names["arf"].name
    if names.get("bkg") is not None:
        header["BACKFILE"] = names["bkg"].name
    if names.get("rmf") is not None:
        header["RESPFILE"] = names["rmf"].name
    return header


def _counts_column(counts):
    counts = np.asarray(counts, dtype=np.float64)
    if np.all(counts == np.round(counts)) and counts.max(initial=0) < 2**31:
        return fits.Column(name="COUNTS", format="J", array=counts.astype(np.int32), unit="count")
    log.info("counts are not integers: writing the COUNTS column as float64")
    return fits.Column(name="COUNTS", format="D", array=counts, unit="count")


def _ebounds_hdu(energy_axis):
    edges = energy_axis.edges
    cols = [
        fits.Column(name="CHANNEL", format="J", array=np.arange(energy_axis.nbin, dtype=np.int32)),
        fits.Column(name="E_MIN", format="D", array=edges[:-1].value, unit=str(edges.unit)),
        fits.Column(name="E_MAX", format="D", array=edges[1:].value, unit=str(edges.unit)),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="EBOUNDS")
    for key, value in {
        "TELESCOP": "DUMMY",
        "INSTRUME": "DUMMY",
        "FILTER": "None",
        "CHANTYPE": "PHA",
        "DETCHANS": energy_axis.nbin,
        "HDUCLASS": "OGIP",
        "HDUCLAS1": "RESPONSE",
        "HDUCLAS2": "EBOUNDS",
        "HDUVERS": "1.2.0",
    }.items():
        hdu.header[key] = value
    return hdu


def _pha_hdulist(
    dataset, counts, backscal, header, region_geom, extra_columns=(), gti=None, meta_table=None
):
    n = counts.size
    mask_safe = (
        dataset.mask_safe.data.reshape(n).astype(bool)
        if dataset.mask_safe is not None
        else np.ones(n, bool)
    )
    quality = np.where(mask_safe, 0, _QUALITY_BAD).astype(np.int16)
    cols = [
        fits.Column(name="CHANNEL", format="J", array=np.arange(n, dtype=np.int32)),
        _counts_column(counts),
        fits.Column(name="QUALITY", format="I", array=quality),
        fits.Column(name="BACKSCAL", format="D", array=np.asarray(backscal, np.float64)),
        *extra_columns,
    ]
    spectrum = fits.BinTableHDU.from_columns(cols, header=header, name="SPECTRUM")
    hdulist = fits.HDUList([fits.PrimaryHDU(), spectrum, _ebounds_hdu(region_geom.axis("energy"))])
    if region_geom.region is not None:
        hdulist.append(region_to_table_hdu(region_geom.region, region_geom.wcs, "REGION"))
    if gti is not None:
        hdu = fits.table_to_hdu(Table(gti))
        hdu.name = "GTI"
        hdulist.append(hdu)
    if meta_table is not None:
        hdu = fits.table_to_hdu(Table(meta_table))
        hdu.name = "META_TABLE"
        hdulist.append(hdu)
    return hdulist


def _arf_hdulist(exposure, livetime_s):
    axis = exposure.geom.axis("energy_true")
    edges = axis.edges
    specresp = exposure.quantity.reshape(axis.nbin) / (livetime_s * u.s)
    cols = [
        fits.Column(name="ENERG_LO", format="D", array=edges[:-1].value, unit=str(edges.unit)),
        fits.Column(name="ENERG_HI", format="D", array=edges[1:].value, unit=str(edges.unit)),
        fits.Column(
            name="SPECRESP",
            format="D",
            array=specresp.value,
            unit=specresp.unit.to_string("fits")
            if _fits_unit_ok(specresp.unit)
            else str(specresp.unit),
        ),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="SPECRESP")
    for key, value in {
        "TELESCOP": "unknown",
        "INSTRUME": "unknown",
        "FILTER": "None",
        "HDUCLASS": "OGIP",
        "HDUCLAS1": "RESPONSE",
        "HDUCLAS2": "SPECRESP",
        "HDUVERS": "1.1.0",
    }.items():
        hdu.header[key] = value
    return fits.HDUList([fits.PrimaryHDU(), hdu])


def _fits_unit_ok(unit):
    try:
        unit.to_string("fits")
        return True
    except (ValueError, u.UnitsError):
        return False


def _rmf_hdulist(edisp, energy_axis):
    axis_true = edisp.energy_axis_true
    edges = axis_true.edges
    pdf = edisp.pdf_matrix
    n_grp, f_chan, n_chan, values = [], [], [], []
    for row in pdf:
        pos = np.flatnonzero(row)
        groups = np.split(pos, np.flatnonzero(np.diff(pos) != 1) + 1) if pos.size else []
        n_grp.append(len(groups))
        f_chan.append(np.array([g[0] for g in groups], dtype=np.int32))
        n_chan.append(np.array([g.size for g in groups], dtype=np.int32))
        values.append(row[pos].astype(np.float64))
    cols = [
        fits.Column(name="ENERG_LO", format="D", array=edges[:-1].value, unit=str(edges.unit)),
        fits.Column(name="ENERG_HI", format="D", array=edges[1:].value, unit=str(edges.unit)),
        fits.Column(name="N_GRP", format="I", array=np.asarray(n_grp, dtype=np.int16)),
        fits.Column(
            name="F_CHAN", format="PJ()", array=np.array(f_chan + [None], dtype=object)[:-1]
        ),
        fits.Column(
            name="N_CHAN", format="PJ()", array=np.array(n_chan + [None], dtype=object)[:-1]
        ),
        fits.Column(
            name="MATRIX", format="PD()", array=np.array(values + [None], dtype=object)[:-1]
        ),
    ]
    hdu = fits.BinTableHDU.from_columns(cols, name="MATRIX")
    for key, value in {
        "TELESCOP": "unknown",
        "INSTRUME": "unknown",
        "FILTER": "None",
        "CHANTYPE": "PHA",
        "HDUCLASS": "OGIP",
        "HDUCLAS1": "RESPONSE",
        "HDUCLAS2": "RSP_MATRIX",
        "HDUVERS": "1.3.0",
        "DETCHANS": energy_axis.nbin,
        "NUMGRP": int(np.sum(n_grp)),
        "NUMELT": int(sum(v.size for v in values)),
        "TLMIN4": 0,
        "TLMAX4": energy_axis.nbin - 1,
    }.items():
        hdu.header[key] = value
    return fits.HDUList([fits.PrimaryHDU(), hdu, _ebounds_hdu(energy_axis)])


def ogip_hdulists(dataset, filename):
    """The OGIP files of a spectrum dataset as ``{path: HDUList}`` (nothing is written)."""
    from ..datasets.spectrum import SpectrumDatasetOnOff

    if dataset.counts is None:
        raise DataFormatError(f"dataset {dataset.name!r}: cannot write OGIP without counts")
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
    header = _spectrum_header(dataset, n, "TOTAL", livetime_s, names)
    out[names["pha"]] = _pha_hdulist(
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
        header = _spectrum_header(dataset, n, "BKG", livetime_s, names)
        out[names["bkg"]] = _pha_hdulist(
            dataset,
            dataset.counts_off.data.reshape(n),
            dataset.acceptance_off.data.reshape(n),
            header,
            dataset.counts_off.geom,
        )
    out[names["arf"]] = _arf_hdulist(dataset.exposure, livetime_s)
    if dataset.edisp is not None:
        out[names["rmf"]] = _rmf_hdulist(dataset.edisp, geom.axis("energy"))
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
