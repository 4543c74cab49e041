"""Models YAML in gammapy 2.1's schema.

Layout (what gammapy's ``Models.write`` produces and reads)::

    components:
    -   name: crab
        type: SkyModel
        datasets_names: [...]            # optional
        spectral:
            type: PowerLawSpectralModel
            parameters:
            -   {name: index, value: 2.3, error: 0.1, min: ..., max: ..., frozen: ...,
                 link: index@..., prior: {type: UniformPrior, parameters: [...], weight: 1}}
        spatial: {...}                   # optional
    -   type: FoVBackgroundModel
        datasets_names: [dataset-name]
        spectral: {...}
    -   name: hess-energy-scale        # bayesdl4's nuisance models (EffectiveAreaScaleModel alike)
        type: EnergyScaleModel
        datasets_names: [hess-run1, hess-run2]
        parameters: [{name: z, value: 0.0, prior: {type: GaussianPrior, ...}}]
    covariance: file.dat                 # ignored here
    metadata: {creator: ..., date: ..., origin: ...}

Parameters left out take the class defaults (gammapy writes only what differs). Parameters with
the same ``link`` label are one `Parameter` object. A `PopulationPrior` is written in full in each
member's ``prior:`` entry (``{type: PopulationPrior, name, distribution, centered, mu, sigma}``);
on reading, the members naming one population share one object. Spatial and temporal components, which this
package does not model yet, are kept as raw dicts (``SkyModel.spatial_dict`` /
``SkyModel.temporal_dict``) and written back unchanged.
"""

import datetime
import logging
import os
from pathlib import Path

import yaml

from .. import __version__
from ..errors import DataFormatError, ModelError
from ..models.background import FoVBackgroundModel
from ..models.nuisance import EffectiveAreaScaleModel, EnergyScaleModel, NuisanceModel
from ..models.population import PopulationPrior
from ..models.sky import Models, SkyModel
from ..models.spectral import spectral_model_from_dict
from ..utils.fileio import atomic_path
from ._yaml import load_yaml

log = logging.getLogger(__name__)

__all__ = [
    "read_models",
    "write_models",
    "models_to_yaml",
    "models_from_dict",
    "models_to_dict",
    "FoVBackgroundModel",
]


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def read_models(filename):
    """Read a gammapy 2.1 models YAML file into `~bayesdl4.models.Models`.

    ``filename`` may contain environment variables (``$GAMMAPY_DATA/...``). Relative
    ``filename`` entries inside the file (EBL tables, templates) are taken relative to the
    YAML file's folder when they exist there.
    """
    path = Path(os.path.expandvars(str(filename))).expanduser()
    return models_from_dict(load_yaml(path, "models file"), filename=path)


def models_from_dict(data, filename=None):
    """`Models` from the parsed YAML dict; ``filename`` names the file in error messages."""
    where = str(filename) if filename is not None else "<dict>"
    if not isinstance(data, dict) or not isinstance(data.get("components"), list):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataFormatError(
            f"{where}: a models file needs a top-level 'components' list; found {found}"
        )
    base_dir = Path(filename).parent if filename is not None else None
    links = {}
    models = []
    for index, component in enumerate(data["components"]):
        if not isinstance(component, dict):
            raise DataFormatError(f"{where}: component {index} is not a mapping")
        label = f"component {index} ({component.get('name', 'unnamed')!r})"
        if base_dir is not None:
            _resolve_filenames(component, base_dir)
        try:
            models.append(_component_from_dict(component, links))
        except ModelError as exc:
            raise ModelError(f"{where}: {label}: {exc}") from exc
        except (AttributeError, TypeError, KeyError) as exc:  # an entry of the wrong YAML type
            raise ModelError(
                f"{where}: {label} does not have the structure of a gammapy models file ({exc!r}); "
                "compare it with a file written by Models.write"
            ) from exc
    _unify_populations(models, where)
    if "covariance" in data:
        log.info(
            "%s: covariance file %r is not read (errors come from the parameters)",
            where,
            data["covariance"],
        )
    try:
        return Models(models)
    except ModelError as exc:
        raise ModelError(f"{where}: {exc}") from exc


def _unify_populations(models, where):
    """Members naming one population share one `PopulationPrior` object (each member's entry
    repeats the definition); two definitions of one name that differ raise `ModelError`."""
    populations = {}
    for model in models:
        for par in model.parameters:
            prior = par.prior
            if not isinstance(prior, PopulationPrior):
                continue
            first = populations.setdefault(prior.name, (prior, model.name, par.name))
            if first[0].structure_key() != prior.structure_key():
                raise ModelError(
                    f"{where}: PopulationPrior {prior.name!r} is defined differently in model "
                    f"{first[1]!r} parameter {first[2]!r} ({first[0]!r}) and in model {model.name!r} "
                    f"parameter {par.name!r} ({prior!r}); one population has one definition"
                )
            par.prior = first[0]


def _component_from_dict(data, links):
    kind = data.get("type", "SkyModel")
    if kind == "SkyModel":
        return _sky_model_from_dict(data, links)
    if kind in FoVBackgroundModel.tag:
        names = data.get("datasets_names") or []
        if len(names) != 1:
            raise ModelError(
                f"FoVBackgroundModel needs exactly one entry in datasets_names, got {names}"
            )
        spectral = data.get("spectral")
        spectral_model = None if spectral is None else spectral_model_from_dict(spectral, links)
        return FoVBackgroundModel(names[0], spectral_model, data.get("spatial"))
    for cls in _NUISANCE_MODELS:
        if kind in cls.tag:
            return cls.from_dict(data, links)
    supported = ["SkyModel", "FoVBackgroundModel", *(cls.tag[0] for cls in _NUISANCE_MODELS)]
    raise ModelError(f"component type {kind!r} is not supported yet; supported: {supported}")


_NUISANCE_MODELS = (EnergyScaleModel, EffectiveAreaScaleModel)


def _sky_model_from_dict(data, links):
    if "name" not in data:
        raise ModelError("SkyModel needs a 'name'")
    if "spectral" not in data:
        raise ModelError("SkyModel needs a 'spectral' entry")
    spectral_model = spectral_model_from_dict(data["spectral"], links)
    spatial_model, spatial_dict = _spatial_from_dict(data.get("spatial"), data["name"], links)
    model = SkyModel(
        spectral_model, spatial_model, name=data["name"], datasets_names=data.get("datasets_names")
    )
    model.spatial_dict = spatial_dict
    temporal = data.get("temporal")
    if temporal is not None:
        log.warning(
            "SkyModel %r: temporal model %r is not supported yet; kept as a raw dict "
            "and written back unchanged",
            data["name"],
            temporal.get("type"),
        )
    model.temporal_dict = temporal
    for key in sorted(
        set(data) - {"name", "type", "spectral", "spatial", "temporal", "datasets_names"}
    ):
        log.warning("SkyModel %r: entry %r is ignored", data["name"], key)
    return model


def _spatial_from_dict(data, name, links):
    """(spatial model, None) when a spatial model class reads it, else (None, raw dict)."""
    if data is None:
        return None, None
    if not isinstance(data, dict):
        raise ModelError(
            f"SkyModel {name!r}: 'spatial' must be a mapping such as {{type: PointSpatialModel, "
            f"frame: icrs, parameters: [...]}}, got {type(data).__name__} {data!r}"
        )
    try:
        from ..models import spatial as spatial_module
    except ImportError:
        spatial_module = None
    registry = getattr(spatial_module, "SPATIAL_MODEL_REGISTRY", {})
    cls = registry.get(data.get("type"))
    if cls is not None:
        return cls.from_dict(data, links=links), None
    log.warning(
        "SkyModel %r: spatial model %r is not supported yet; kept as a raw dict and "
        "written back unchanged",
        name,
        data.get("type"),
    )
    return None, data


def _resolve_filenames(data, base_dir):
    """gammapy semantics: a relative ``filename`` is relative to the YAML file's folder."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "filename" and isinstance(value, str) and not value.startswith("$"):
                path = Path(value)
                if not path.is_absolute() and (base_dir / path).exists():
                    data[key] = str(base_dir / path)
            else:
                _resolve_filenames(value, base_dir)
    elif isinstance(data, list):
        for item in data:
            _resolve_filenames(item, base_dir)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def models_to_dict(models):
    """gammapy's YAML dict for ``models`` (shared parameters get ``link`` labels)."""
    models = models if isinstance(models, Models) else Models(models)
    components = [_component_to_dict(model) for model in models]
    # (Parameter, its YAML entry) pairs over all components, in order
    pairs = []
    for model, data in zip(models, components, strict=True):
        if isinstance(model, NuisanceModel):
            pairs += list(zip(model.parameters, data["parameters"], strict=True))
            continue
        entries = list(_parameter_dicts(data["spectral"]))
        pairs += list(zip(model.spectral_model.parameters, entries, strict=True))
        if getattr(model, "spatial_model", None) is not None:
            spatial_entries = data["spatial"].get("parameters", [])
            if spatial_entries:  # gammapy writes ConstantSpatialModel with an empty list
                pairs += list(zip(model.spatial_model.parameters, spatial_entries, strict=True))
    counts = {}
    for par, _ in pairs:
        counts[id(par)] = counts.get(id(par), 0) + 1
    labels = {}
    for par, entry in pairs:
        if counts[id(par)] > 1:
            labels.setdefault(id(par), f"{entry['name']}@link{len(labels)}")
            entry["link"] = labels[id(par)]
    metadata = {
        "creator": f"bayesdl4 {__version__}",
        "date": datetime.datetime.now(datetime.UTC).replace(tzinfo=None).isoformat(),
        "origin": None,
    }
    return {"components": components, "metadata": metadata}


def _component_to_dict(model):
    if isinstance(model, FoVBackgroundModel | NuisanceModel):
        return model.to_dict()
    if not isinstance(model, SkyModel):
        raise ModelError(
            f"cannot write {type(model).__name__} {getattr(model, 'name', '')!r} to YAML"
        )
    data = {"name": model.name, "type": "SkyModel"}
    if model.datasets_names is not None:
        data["datasets_names"] = list(model.datasets_names)
    data["spectral"] = model.spectral_model.to_dict()
    if model.spatial_model is not None:
        data["spatial"] = model.spatial_model.to_dict()
    elif getattr(model, "spatial_dict", None) is not None:
        data["spatial"] = model.spatial_dict
    if getattr(model, "temporal_dict", None) is not None:
        data["temporal"] = model.temporal_dict
    return data


def _parameter_dicts(spectral):
    """Parameter entries in the order of ``model.parameters`` (compound: model1 then model2)."""
    if "model1" in spectral:
        yield from _parameter_dicts(spectral["model1"])
        yield from _parameter_dicts(spectral["model2"])
    else:
        yield from spectral.get("parameters", [])


def models_to_yaml(models):
    """gammapy-schema YAML text for ``models``."""
    return yaml.safe_dump(
        models_to_dict(models), sort_keys=False, indent=4, width=80, default_flow_style=False
    )


def write_models(models, filename, overwrite=False):
    """Write ``models`` as gammapy-schema YAML, atomically; refuses to replace a file unless
    ``overwrite=True``."""
    text = models_to_yaml(models)
    with atomic_path(filename, overwrite=overwrite) as tmp:
        Path(tmp).write_text(text)
