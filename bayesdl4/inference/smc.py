"""Sequential Monte Carlo evidence: PyMC's IMH kernel on bayesdl4's compiled functions.

`run_smc` runs PyMC's SMC algorithm (`pymc.smc.kernels.IMH`: adaptive tempering of the
likelihood from the prior to the posterior, resampling, independent Metropolis-Hastings
mutations; the evidence is the product of the stages' mean importance weights) chain after
chain, with its own driver instead of `pymc.sample_smc`: that one builds a PyMC trace per chain
(compiling the model's deterministics each time) and an InferenceData, which cost more than the
sampling on small models, and this module needs only the evidence and the particles.

Imported lazily (it imports PyMC). Two changes to `pymc.smc.kernels.IMH`:

* the first population comes from every variable's prior: PyMC's kernels start a variable that
  has an initial value at that value in every particle, and `build_model` gives every parameter
  its start value, which would make the first population a point mass and the evidence the
  likelihood at the start;
* the log prior (``model.varlogp``) and the tempered log-likelihood (``model.datalogp``: observed
  variables and potentials) are compiled by `bayesdl4.compiled` with the data as inputs, so a
  second model of the same structure compiles nothing, and they are called through their Numba
  kernels (no PyTensor call overhead per particle).

It also counts likelihood evaluations (``n_calls``).
"""

import numpy as np
import pytensor
from pymc import draw
from pymc.initial_point import make_initial_point_expression
from pymc.model import modelcontext
from pymc.smc.kernels import IMH
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.replace import clone_replace
from pytensor.graph.traversal import ancestors, graph_inputs
from scipy.special import logsumexp

from ..compiled import compile_function, single_blas_thread
from ..errors import InferenceError
from ..models.population import PopulationPrior
from .density import model_functions

__all__ = ["PriorIMH", "smc_functions", "run_smc"]


class _Scalar:
    """``x -> float`` of a compiled ``(x, *data) -> [scalar]`` with its data bound."""

    def __init__(self, function, data):
        self.function, self.data = function, data
        self.core = getattr(getattr(function, "vm", None), "jit_fn", None)

    def __call__(self, x):
        x = np.ascontiguousarray(x, dtype="float64")
        out = self.core(x, *self.data) if self.core is not None else self.function(x, *self.data)
        return float(np.asarray(out[0]))


def smc_functions(model, mode="NUMBA"):
    """``(log prior, log-likelihood)`` of ``x``, the flat vector of the model's value variables
    (the order of ``model.value_vars``, as PyMC's SMC kernels ravel a point)."""
    functions = model_functions(model)
    graphs = clone_replace([model.varlogp, model.datalogp], functions.replacements)
    out = []
    for graph in graphs:
        shared = sorted({v for v in graph_inputs([graph]) if isinstance(v, SharedVariable)}, key=lambda v: v.name)
        inputs = [v.type(name=v.name) for v in shared]
        (graph,) = clone_replace([graph], dict(zip(shared, inputs, strict=True)))
        with pytensor.config.change_flags(traceback__limit=0):
            function = compile_function([functions.x, *inputs], [graph], mode=mode)
        out.append(_Scalar(function, [np.ascontiguousarray(v.get_value(borrow=True)) for v in shared]))
    return tuple(out)


class PriorIMH(IMH):
    """`pymc.smc.kernels.IMH` started from the priors, on `smc_functions` (module docstring)."""

    def __init__(self, draws=2000, start=None, model=None, random_seed=None, threshold=0.5,
                 correlation_threshold=0.01, compile_kwargs=None):
        # SMC_KERNEL.__init__ without its compilation (the functions come from smc_functions)
        if not 0 <= threshold <= 1:
            raise ValueError(f"Threshold value {threshold} must be between 0 and 1")
        model = modelcontext(model)
        self.draws, self.start, self.threshold = draws, start, threshold
        self.correlation_threshold = correlation_threshold
        self.rng = np.random.default_rng(seed=random_seed)
        self.variables = model.value_vars
        functions = model_functions(model)
        self.var_info = {v.name: (shape, int(np.prod(shape, dtype=int)))
                         for v, shape in zip(functions.value_vars, functions.shapes, strict=True)}
        mode = (compile_kwargs or {}).get("mode") or "NUMBA"
        self.prior_logp_func, self.likelihood_logp_func = smc_functions(model, mode=mode)
        self._prior_expression = make_initial_point_expression(
            free_rvs=model.free_RVs, rvs_to_transforms=model.rvs_to_transforms, initval_strategies={},
            default_strategy="prior", return_transformed=True)
        self._prior_var_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
        self.proposal_dist = None
        self.acc_rate = None
        self._reset_state()

    def set_rng(self, rng):
        self.rng = rng  # the compiled functions hold no random state

    def _reset_state(self):
        super()._reset_state()
        self.n_calls = 0

    def _initialize_kernel(self):
        super()._initialize_kernel()
        self.n_calls += self.draws

    def mutate(self):
        super().mutate()
        self.n_calls += self.draws * (self.n_steps - 1)  # IMH counts its loops from 1


def _prior_population(model, info):
    """``sample(rng, draws) -> {value variable name: (draws, ...) array}``: prior draws mapped into
    the sampler's (transformed) space; bayesdl4 priors by their inverse CDF (vectorised), other
    variables by `pymc.draw`. None when a variable depends on another (a centred population):
    `PriorIMH` then draws by PyMC's ancestral sampling (slower)."""
    free = set(model.free_RVs)
    samplers, graphs, inputs = [], [], []
    for rv in model.free_RVs:
        name = rv.name
        prior = info.priors.get(name[: -len("__scaled")]) if name.endswith("__scaled") else None
        if prior is not None and hasattr(prior, "ppf") and not isinstance(prior, PopulationPrior):
            scale = info.scales.get(name[: -len("__scaled")], 1.0)
            samplers.append(lambda rng, n, prior=prior, scale=scale: np.asarray(prior.ppf(rng.uniform(size=n))) / scale)
            ndim = 1
        elif not free.intersection(ancestors(rv.owner.inputs)):  # independent of the other variables
            samplers.append(lambda rng, n, rv=rv: np.asarray(draw(rv, draws=n, random_seed=rng), dtype=float))
            ndim = 1 + rv.type.ndim
        else:
            return None
        var = pytensor.tensor.tensor(dtype="float64", shape=(None,) * ndim, name=name)
        transform = model.rvs_to_transforms.get(rv)
        graphs.append(var if transform is None else transform.forward(var, *rv.owner.inputs))
        inputs.append(var)
    forward = pytensor.function(inputs, graphs, mode="FAST_COMPILE", on_unused_input="ignore")
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]

    def sample(rng, draws):
        values = forward(*(np.asarray(s(rng, draws), dtype=float) for s in samplers))
        return dict(zip(names, (np.asarray(v, dtype=float) for v in values), strict=True))

    return sample


def _physical(model, info):
    """``x -> physical values of the free model parameters`` (table order)."""
    functions = model_functions(model)
    graph = model.replace_rvs_by_values([info.theta[: info.table.n_free]])
    (graph,) = clone_replace(graph, functions.replacements)
    return pytensor.function([functions.x], graph, mode="FAST_COMPILE", on_unused_input="ignore")


def _check_prior_spread(model, particles, smallest=1e-3):
    """`InferenceError` naming a variable whose prior draws span less than ``smallest`` in the
    sampler's space: PyMC's IMH adds 1e-6 to its proposal covariance, which swamps such a variable
    (e.g. the members of a centred normal population, sampled in physical units ~1e-11)."""
    functions = model_functions(model)
    spread = np.std(particles, axis=0)
    for name, sl in zip(functions.value_names, functions.slices, strict=True):
        if np.any(spread[sl] < smallest):
            raise InferenceError(
                f"variable {name!r} spans only {np.min(spread[sl]):.3g} in the sampler's space across its prior "
                "draws: SMC's proposal (PyMC's IMH, covariance + 1e-6) cannot move it. Sample it scaled to ~1 "
                "(for a PopulationPrior: centered=False, the default)")


def run_smc(model, info, random_seed=None, progressbar=True, draws=1000, chains=4, threshold=0.5,
            correlation_threshold=0.01):
    """Run ``chains`` independent SMC chains of ``draws`` particles on ``model``.

    Returns a dict of `EvidenceResult` fields: ``log_z`` (log of the chains' mean evidence),
    ``log_z_error`` (the larger of the chains' scatter in ``log Z`` and the error their stages'
    importance weights imply, each per chain, over ``sqrt(chains)``), ``log_z_runs``,
    ``n_likelihood_calls``, ``samples`` (final particles, physical units, (chains, draws)) and
    ``settings``.
    """
    if chains < 2:
        raise InferenceError("SMC's error on log Z is the scatter of independent chains: use chains >= 2")
    kernel = PriorIMH(draws=draws, model=model, threshold=threshold, correlation_threshold=correlation_threshold)
    population = _prior_population(model, info)
    seeds = np.random.SeedSequence(random_seed).spawn(chains)
    log_z, variances, calls, particles = [], [], 0, []
    bar = None
    if progressbar:
        from tqdm.auto import tqdm

        bar = tqdm(total=chains, desc="SMC chains", leave=False)
    with single_blas_thread():
        for seed in seeds:
            rng = np.random.default_rng(seed)
            kernel.initialize(population(rng, draws) if population is not None else None, rng)
            _check_prior_spread(model, kernel.tempered_posterior)
            variance = 0.0
            while kernel.beta < 1:
                kernel.update_beta_and_weights()
                # variance of the log of this stage's mean weight (delta method): 1/ESS - 1/N
                variance += max(float(np.sum(kernel.weights**2)) - 1.0 / draws, 0.0)
                kernel.step()
                if bar is not None:
                    bar.set_postfix(beta=f"{kernel.beta:.3g}", stage=kernel.iteration)
            log_z.append(float(kernel.log_marginal_likelihood))
            variances.append(variance)
            calls += kernel.n_calls
            particles.append(np.array(kernel.tempered_posterior, dtype=float))
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    log_z = np.array(log_z)
    if not np.all(np.isfinite(log_z)):
        raise InferenceError(f"SMC gave no finite log evidence for some chains ({log_z}): check that the "
                             "likelihood is finite across the priors' support")
    physical = _physical(model, info)
    values = np.array([[physical(x) for x in chain] for chain in particles])
    samples = {name: values[..., i] for i, name in enumerate(info.table.free_names)}
    # the scatter of a few chains can be small by chance: the error is the larger of the chains'
    # scatter and the importance-sampling variance the stages' weights imply
    scatter = float(np.var(log_z, ddof=1))
    implied = float(np.mean(variances))
    return {
        "log_z": float(logsumexp(log_z) - np.log(chains)),
        "log_z_error": float(np.sqrt(max(scatter, implied) / chains)),
        "log_z_runs": log_z,
        "n_likelihood_calls": int(calls),
        "samples": samples,
        "settings": {"draws": draws, "chains": chains, "threshold": threshold,
                     "chain_scatter": float(np.sqrt(scatter)), "implied_chain_error": float(np.sqrt(implied)),
                     "correlation_threshold": correlation_threshold, "kernel": "pymc IMH, prior start"},
    }
