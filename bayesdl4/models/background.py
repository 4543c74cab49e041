"""Background models of map datasets."""

from .spectral import PowerLawNormSpectralModel

__all__ = ["FoVBackgroundModel"]


class FoVBackgroundModel:
    """Field-of-view background model of one map dataset: a norm spectral model (and, not
    modelled yet, a raw spatial dict). Named ``"<dataset>-bkg"`` as in gammapy.

    Read and written so that gammapy's map-dataset model files round-trip; the graph code
    decides whether it can use it.
    """

    tag = ("FoVBackgroundModel", "fov-bkg")

    def __init__(self, dataset_name, spectral_model=None, spatial_dict=None):
        self.datasets_names = [str(dataset_name)]
        self.name = f"{dataset_name}-bkg"
        self.spectral_model = (
            PowerLawNormSpectralModel() if spectral_model is None else spectral_model
        )
        self.spatial_model = None
        self.spatial_dict = spatial_dict

    @property
    def parameters(self):
        return self.spectral_model.parameters

    def copy(self, name=None):
        return FoVBackgroundModel(
            self.datasets_names[0],
            self.spectral_model.copy(),
            None if self.spatial_dict is None else dict(self.spatial_dict),
        )

    def to_dict(self):
        data = {
            "type": self.tag[0],
            "datasets_names": list(self.datasets_names),
            "spectral": self.spectral_model.to_dict(),
        }
        if self.spatial_dict is not None:
            data["spatial"] = self.spatial_dict
        return data

    def __repr__(self):
        return f"FoVBackgroundModel(name={self.name!r}, spectral={self.spectral_model!r})"
