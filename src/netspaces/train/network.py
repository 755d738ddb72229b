"""Which network a run trains, from typed arguments: a sampled model, a zoo model, a timm one.

Returns the module plus what the result record says about it: the design-space identity
(space, regime, sample), the architecture, and complexity twice — `flops/params/acts` as the
design space defines it (224 px, 1000 classes: the regime's numbers) and `trained` for the
network actually trained (its resolution, classes and stem).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from torch import nn

from netspaces.errors import UserError
from netspaces.models.anynet import build_model
from netspaces.space.complexity import complexity
from netspaces.train.settings import ModelChoice


@dataclass
class Network:
    module: nn.Module
    info: dict = field(default_factory=dict)


def _counts(cx) -> dict:
    return {"flops": int(cx.flops), "params": int(cx.params), "acts": int(cx.acts)}


def build_network(c: ModelChoice) -> Network:
    if c.kind == "sampled":
        return _sampled(c)
    if c.kind == "zoo":
        return _zoo(c)
    if c.kind == "timm":
        return _timm(c)
    if c.kind == "matched":
        return _matched(c)
    raise UserError(f"unknown model kind {c.kind!r}; allowed: sampled, zoo, timm, matched")


def _sampled(c: ModelChoice) -> Network:
    from netspaces.space.sampling import sample_at

    s = sample_at(c.space, c.regime, c.sweep_seed, c.sample, block=c.block, draw=c.draw)
    spec = replace(s.spec, num_classes=c.num_classes, stem=c.stem or s.spec.stem)
    info = {
        "name": s.name,
        "model": "sampled",
        "space": s.space,
        "regime": s.regime,
        "block": spec.block,
        "sample": s.index,
        "sweep_seed": s.seed,
        "arch": s.arch,
        "flops": s.flops,
        "params": s.params,
        "acts": s.acts,
        "trained": {
            "resolution": c.resolution,
            "num_classes": c.num_classes,
            "stem": spec.stem,
            **_counts(complexity(spec, c.resolution)),
        },
    }
    return Network(build_model(spec, zero_init_final_gamma=c.zero_init_final_gamma), info)


def _zoo(c: ModelChoice) -> Network:
    from netspaces.space.zoo import canonical_name, get_model_spec, regnet_params

    name = canonical_name(c.name)
    nominal = get_model_spec(name)
    spec = get_model_spec(name, num_classes=c.num_classes, stem=c.stem)
    arch = {"ws": list(spec.ws), "ds": list(spec.ds), "gs": list(spec.gs), "bs": list(spec.bs), "block": spec.block}
    params = regnet_params(name)
    if params is not None:
        arch |= {k: v for k, v in asdict(params).items() if k in ("depth", "w0", "wa", "wm", "group_w", "bot_mul")}
    info = {
        "name": name,
        "model": name,
        "space": None,
        "regime": None,
        "block": spec.block,
        "sample": None,
        "arch": arch,
        **_counts(complexity(nominal, 224)),
        "trained": {
            "resolution": c.resolution,
            "num_classes": c.num_classes,
            "stem": spec.stem,
            **_counts(complexity(spec, c.resolution)),
        },
    }
    return Network(build_model(spec, zero_init_final_gamma=c.zero_init_final_gamma), info)


def _timm(c: ModelChoice) -> Network:
    from netspaces.models.baselines import baseline_complexity, create_baseline, measured_complexity

    module = create_baseline(
        c.name, num_classes=c.num_classes, stem=c.stem, zero_init_final_gamma=c.zero_init_final_gamma
    )
    info = {
        "name": c.name,
        "model": c.name,
        "space": None,
        "regime": None,
        "block": None,
        "sample": None,
        "arch": {},
        **_counts(baseline_complexity(c.name)),
        "trained": {
            "resolution": c.resolution,
            "num_classes": c.num_classes,
            "stem": c.stem or "native",
            **_counts(measured_complexity(module, c.resolution)),
        },
    }
    return Network(module, info)


def _matched(c: ModelChoice) -> Network:
    """model=baselines: the baseline `c.name` matched to the regime (models/matched.py)."""
    from netspaces.models.matched import build_matched, match_baseline, trained_complexity

    m = match_baseline(c.name, c.regime)
    module, arch = build_matched(
        m, num_classes=c.num_classes, stem=c.stem, zero_init_final_gamma=c.zero_init_final_gamma
    )
    trained = trained_complexity(m, module, resolution=c.resolution, num_classes=c.num_classes, stem=c.stem)
    info = {
        "name": m.name,
        "model": m.name,
        "space": None,
        "regime": m.regime,
        "block": None,
        "sample": None,
        "arch": arch,
        "flops": m.flops,
        "params": m.params,
        "acts": m.acts,
        "trained": {
            "resolution": c.resolution,
            "num_classes": c.num_classes,
            "stem": c.stem or "native",
            **_counts(trained),
        },
    }
    return Network(module, info)
