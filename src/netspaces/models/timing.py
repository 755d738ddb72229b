"""Forward and forward+backward time per batch (`netspaces time MODEL`): forward and forward+backward time per batch, like the paper's
inference and training-time columns (pycls `time_model`), for zoo names and timm baselines.

Forward runs in eval mode under no_grad; forward+backward in train mode with a
cross-entropy loss and no optimizer step (pycls's `train_fw_bw_time`). Each is warmed up,
then timed over `repeats` batches; the median is reported with the spread of the repeats
((max - min) / median, %): a spread above SPREAD_WARN_PCT says the machine was busy or the
clock unsteady, and the number should not be trusted (no CPU-load probe: the repeats are the
evidence). On CPU the model and the input
are channels_last (measured faster for RegNets here), except for networks with depthwise
convs (EfficientNet, MobileNet): PyTorch's CPU depthwise backward is several times slower
in channels_last.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable

from netspaces.errors import UserError

if TYPE_CHECKING:  # torch loads only when something is timed: `netspaces describe` stays fast
    import torch
    from torch import nn

DEVICES = ("cpu", "cuda")
SPREAD_WARN_PCT = 20.0  # repeats further apart than this (relative to their median) are flagged


@dataclass(frozen=True)
class Timing:
    model: str
    device: str
    batch: int
    resolution: int
    threads: int
    repeats: int
    forward_ms: float  # median per batch
    train_ms: float  # median per batch: forward + backward
    forward_spread_pct: float = 0.0  # (max - min) / median of the repeats, %
    train_spread_pct: float = 0.0

    @property
    def forward_ms_per_image(self) -> float:
        return self.forward_ms / self.batch

    @property
    def train_ms_per_image(self) -> float:
        return self.train_ms / self.batch

    def spread_warning(self) -> str | None:
        """One line when either median rests on repeats further apart than SPREAD_WARN_PCT."""
        worst = max(self.forward_spread_pct, self.train_spread_pct)
        if worst <= SPREAD_WARN_PCT:
            return None
        return (
            f"{self.model}: repeats spread {self.forward_spread_pct:.0f}% (forward) and "
            f"{self.train_spread_pct:.0f}% (forward+backward) around the median, over {SPREAD_WARN_PCT:g}%: "
            "the machine was busy; time again on a quiet one or with more repeats"
        )

    def as_dict(self) -> dict:
        return {
            **asdict(self),
            "forward_ms_per_image": self.forward_ms_per_image,
            "train_ms_per_image": self.train_ms_per_image,
        }


def _check(batch: int, resolution: int, repeats: int, warmup: int, device: str) -> None:
    if batch < 1:
        raise UserError(f"batch must be >= 1; got {batch}")
    if resolution < 8:
        raise UserError(f"resolution must be >= 8; got {resolution}")
    if repeats < 1 or warmup < 0:
        raise UserError(f"repeats must be >= 1 and warmup >= 0; got {repeats} and {warmup}")
    if device not in DEVICES:
        raise UserError(f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")
    if device == "cuda" and not _cuda_available():
        raise UserError("device cuda is not available on this machine; use --device cpu")


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def median_ms(fn: Callable[[], object], *, repeats: int, warmup: int, device: str = "cpu") -> float:
    """Median wall time of `fn` in milliseconds after `warmup` untimed calls."""
    return statistics.median(sample_ms(fn, repeats=repeats, warmup=warmup, device=device))


def spread_pct(times: list[float]) -> float:
    """(max - min) / median of the repeats, in % (0 for a single repeat)."""
    mid = statistics.median(times)
    return 100.0 * (max(times) - min(times)) / mid if mid > 0 else 0.0


def sample_ms(fn: Callable[[], object], *, repeats: int, warmup: int, device: str = "cpu") -> list[float]:
    """Wall time of each of `repeats` calls of `fn`, in milliseconds, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def forward_fn(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    import torch

    def run() -> object:
        with torch.no_grad():
            return model(x)

    return run


def train_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], object]:
    import torch.nn.functional as F

    def run() -> object:
        for p in model.parameters():
            p.grad = None  # no accumulation across repeats (what zero_grad(set_to_none) does)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return run


def has_depthwise_conv(model: nn.Module) -> bool:
    from torch import nn

    return any(
        isinstance(m, nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels == m.out_channels
        for m in model.modules()
    )


def default_channels_last(model: nn.Module, device: str) -> bool:
    """channels_last on CPU, except for depthwise-conv networks (slow backward there)."""
    return device == "cpu" and not has_depthwise_conv(model)


def time_module(
    model: nn.Module,
    *,
    name: str = "model",
    batch: int = 64,
    resolution: int = 224,
    device: str = "cpu",
    repeats: int = 10,
    warmup: int = 2,
    channels_last: bool | None = None,
    num_classes: int = 1000,
    in_chans: int = 3,
) -> Timing:
    """Time one module: forward (eval, no_grad) then forward+backward (train)."""
    import torch

    _check(batch, resolution, repeats, warmup, device)
    if channels_last is None:
        channels_last = default_channels_last(model, device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=fmt)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, in_chans, resolution, resolution, generator=gen).to(device, memory_format=fmt)
    y = torch.randint(0, num_classes, (batch,), generator=gen).to(device)
    was_training = model.training
    try:
        model.eval()
        fwd = sample_ms(forward_fn(model, x), repeats=repeats, warmup=warmup, device=device)
        model.train()
        try:
            train = sample_ms(train_fn(model, x, y), repeats=repeats, warmup=warmup, device=device)
        except ValueError as e:  # BatchNorm in training needs > 1 value per channel
            raise UserError(
                f"forward+backward of {name} fails at batch {batch}, {resolution} px: "
                f"{str(e).splitlines()[0]}; use a larger --batch or --resolution"
            ) from None
    finally:
        model.train(was_training)
        for p in model.parameters():
            p.grad = None
    return Timing(
        name,
        device,
        batch,
        resolution,
        torch.get_num_threads(),
        repeats,
        statistics.median(fwd),
        statistics.median(train),
        spread_pct(fwd),
        spread_pct(train),
    )


def time_model(
    name: str,
    *,
    batch: int = 64,
    resolution: int | None = None,
    device: str = "cpu",
    repeats: int = 10,
    warmup: int = 2,
    threads: int | None = None,
    channels_last: bool | None = None,
) -> Timing:
    """Time a zoo model (RegNetX-400MF, ResNet-50, …) or a timm baseline (efficientnet_b0, …)
    at `resolution` (default: the model's native one) with 1000 classes."""
    _check(batch, resolution or 224, repeats, warmup, device)  # bad values fail before torch loads
    import torch

    from netspaces.models.baselines import get_network, native_resolution

    resolution = resolution or native_resolution(name)  # also rejects unknown names
    if threads is not None:
        if threads < 1:
            raise UserError(f"threads must be >= 1; got {threads}")
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = get_network(name, num_classes=1000)
    return time_module(
        model,
        name=name,
        batch=batch,
        resolution=resolution,
        device=device,
        repeats=repeats,
        warmup=warmup,
        channels_last=channels_last,
    )


# ---------------------------------------------------------------------------- CLI
