"""Former home of the map-dataset transformations; they now live in `bayesdl4.datasets.reduce`
(any dataset type) and `bayesdl4.datasets.geoms` (empty datasets). Kept names re-exported."""

from .geoms import BINSZ_IRF_DEFAULT, RAD_AXIS_DEFAULT
from .map import MapDataset
from .reduce import cutout, slice_by_idx, to_image

__all__ = ["create_map_dataset", "cutout", "slice_by_idx", "to_image", "RAD_AXIS_DEFAULT"]


def create_map_dataset(
    geom,
    energy_axis_true=None,
    migra_axis=None,
    rad_axis=None,
    binsz_irf=BINSZ_IRF_DEFAULT,
    reference_time="2000-01-01",
    name="dataset",
    meta_table=None,
    reco_psf=False,
    dataset_class=MapDataset,
):
    """Empty dataset on ``geom`` (``dataset_class.create``, gammapy's ``MapDataset.create``)."""
    return dataset_class.create(
        geom,
        energy_axis_true=energy_axis_true,
        migra_axis=migra_axis,
        rad_axis=rad_axis,
        binsz_irf=binsz_irf,
        reference_time=reference_time,
        name=name,
        meta_table=meta_table,
        reco_psf=reco_psf,
    )
