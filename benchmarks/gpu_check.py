"""gpu_check: the figures of scripts/gpu_check.sh, one `NAME: value` line each.

    python benchmarks/gpu_check.py train    # RegNetX-400MF train img/s, fp32/bf16 x NCHW/NHWC, vs timm
    python benchmarks/gpu_check.py decode   # decode + augment img/s: PIL float, PIL uint8, GPU decode
    python benchmarks/gpu_check.py sweep    # a 2-model sweep killed mid-run, then resumed
    python benchmarks/gpu_check.py pack     # sweep.pack=K, K = 1, 2, 4, 8: models/h and peak memory
    ... --quick                             # a few images/steps: checks the script, not the speed

What needs CUDA prints `NAME: skipped (no CUDA)` on a machine without it; what cannot be
measured there prints `NAME: not measured (why)`.

train: a full step (forward, cross-entropy, backward, SGD step) at 224 px, batch 128, cuDNN
autotuning on; fp32 is true fp32 (TF32 off, as trainer.precision=32-true), bf16 is autocast
with TF32 for what stays float32 (the trainer=gpu default). Ours (netspaces' RegNetX-400MF,
with the optimizer the trainer builds) and timm's regnetx_004 (torch SGD) have the same
parameter count (checked), one after the other, each after warm-up steps; img/s from the
CUDA-synchronised wall time of the timed steps.

decode: the training transform of one image (open, decode, RandomResizedCrop 224, flip) on
the real Imagenette JPEGs (../shared/data/imagenette/train, or $NETSPACES_DATA/imagenette),
in this one process: PIL to float32 normalised (the data.loader=pil path before uint8), PIL
to uint8 (data.loader=pil now: a quarter of the bytes to move; normalised on the device),
data.loader=gpu's step (torchvision's nvJPEG decode_jpeg, crop, flip and resize on the GPU,
batches of 128) and data.loader=dali's pipeline where nvidia-dali is installed ("not
measured" otherwise). img/s per CPU core for the PIL paths (a loader runs one per worker).
Imagenette's files are 224 px: a full ImageNet JPEG (~400x350) decodes slower.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

NO_CUDA = "skipped (no CUDA)"


def say(name: str, value) -> None:
    if isinstance(value, float):
        value = f"{value:.1f}"
    print(f"{name}: {value}", flush=True)


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# ---------------------------------------------------------------------------- train


def _optimizers(ours, ref):
    import torch

    from netspaces.train.optim import build_optimizer
    from netspaces.train.settings import OptimSettings

    s = OptimSettings()
    sgd = torch.optim.SGD(
        ref.parameters(), lr=s.lr, momentum=s.momentum, nesterov=s.nesterov, weight_decay=s.weight_decay
    )
    return build_optimizer(ours, s)[0], sgd


def _img_s(model, opt, batch: int, res: int, *, bf16: bool, nhwc: bool, warmup: int, steps: int) -> float:
    import torch
    import torch.nn.functional as F

    fmt = torch.channels_last if nhwc else torch.contiguous_format
    model = model.cuda().to(memory_format=fmt).train()
    x = torch.randn(batch, 3, res, res, device="cuda").contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (batch,), device="cuda")

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def train(quick: bool) -> None:
    combos = [(p, f) for p in ("fp32", "bf16") for f in ("nchw", "nhwc")]
    names = [f"train_img_s.{m}.{p}.{f}" for p, f in combos for m in ("netspaces_regnetx_400mf", "timm_regnetx_004")]
    names += [f"train_ratio.{p}.{f}" for p, f in combos] + ["train_img_s.netspaces_regnetx_400mf.bf16.nhwc.compiled"]
    if not cuda():
        for name in names:
            say(name, NO_CUDA)
        return
    import torch

    from netspaces import perf

    torch.backends.cudnn.benchmark = True
    batch, res, warmup, steps = (16, 64, 2, 3) if quick else (128, 224, 8, 30)
    say("gpu", torch.cuda.get_device_name())
    for precision, layout in combos:
        perf.set_tf32(precision == "bf16")  # what process_setup does for 32-true / bf16-mixed
        rates = []
        for name, model, opt in _fresh():
            rate = _img_s(
                model, opt, batch, res, bf16=precision == "bf16", nhwc=layout == "nhwc", warmup=warmup, steps=steps
            )
            say(f"train_img_s.{name}.{precision}.{layout}", rate)
            rates.append(rate)
        say(f"train_ratio.{precision}.{layout}", f"{rates[0] / rates[1]:.3f} (netspaces / timm)")
    # trainer.compile=default on the GPU default (bf16, NHWC); the compile time is paid in warm-up
    perf.set_tf32(True)
    (name, model, opt), _ = _fresh()
    perf.compile_network(model, "default")
    t0 = time.perf_counter()
    rate = _img_s(model, opt, batch, res, bf16=True, nhwc=True, warmup=warmup, steps=steps)
    say(f"train_img_s.{name}.bf16.nhwc.compiled", f"{rate:.1f} (compile + warm-up {time.perf_counter() - t0:.0f} s)")


def _fresh():
    if str(REPO) not in sys.path:  # the benchmarks package, for the same model pair train_step_vs_timm builds
        sys.path.insert(0, str(REPO))
    from benchmarks.train_step_vs_timm import models

    ours, ref, _ = models()
    opt_ours, opt_ref = _optimizers(ours, ref)
    return [("netspaces_regnetx_400mf", ours, opt_ours), ("timm_regnetx_004", ref, opt_ref)]


# ---------------------------------------------------------------------------- decode


def imagenette() -> Path | None:
    for root in (os.environ.get("NETSPACES_DATA"), REPO.parent / "shared" / "data", REPO / ".gpu_data"):
        if root and (Path(root) / "imagenette" / "train").is_dir():
            return Path(root) / "imagenette" / "train"
    return None


def _pil_rate(files: list[Path], transform) -> float:
    from netspaces.train.data import open_rgb

    t0 = time.perf_counter()
    for f in files:
        transform(open_rgb(str(f)))
    return len(files) / (time.perf_counter() - t0)


def decode(quick: bool) -> None:
    import torch

    from netspaces.train.data import folder_transforms
    from netspaces.train.settings import DataSettings

    names = ["decode_img_s.pil_float", "decode_img_s.pil_uint8", "decode_img_s.gpu_decode_jpeg", "decode_img_s.dali"]
    root = imagenette()
    if root is None:
        for name in names:
            say(name, "not measured (no imagenette/train under ../shared/data, $NETSPACES_DATA or .gpu_data)")
        return
    files = sorted(root.rglob("*.JPEG"))[: 16 if quick else None]
    say("decode_images", f"{len(files)} ({root})")
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a loader worker (one core each; OpenMP threads only spin here)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    s = DataSettings(name="imagefolder", batch_size=1, resolution=224, augment=True, mean=mean, std=std)
    as_float = folder_transforms(s, train=True)  # data.loader=pil before: float32 from the workers
    as_uint8 = folder_transforms(s, train=True, uint8=True)  # data.loader=pil now: uint8, normalised on the device
    _pil_rate(files[:4], as_float)  # warm-up: imports, first-call costs
    say("decode_img_s.pil_float", _pil_rate(files, as_float))
    say("decode_img_s.pil_uint8", _pil_rate(files, as_uint8))
    torch.set_num_threads(threads)
    say("decode_img_s.gpu_decode_jpeg", _gpu_decode(files) if cuda() else NO_CUDA)
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        say("decode_img_s.dali", "not measured (nvidia-dali not installed: pip install netspaces[dali])")
    else:
        say("decode_img_s.dali", _dali(files) if cuda() else NO_CUDA)


def _gpu_decode(files: list[Path], batch: int = 128) -> float | str:
    """data.loader=gpu's batch step (netspaces.train.gpu_decode): nvJPEG decode, crop, flip,
    resize on the GPU, from the bytes a loader worker hands over."""
    import torch

    from netspaces.train.gpu_decode import decode_batch

    data = [torch.frombuffer(bytearray(f.read_bytes()), dtype=torch.uint8) for f in files]
    device = torch.device("cuda")

    def run() -> None:
        for i in range(0, len(data), batch):
            decode_batch(data[i : i + batch], device, 224, train=True)

    try:
        run()  # warm-up: nvJPEG's handles
    except (RuntimeError, TypeError) as exc:
        return f"not available ({str(exc).splitlines()[0][:100]})"
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    run()
    torch.cuda.synchronize()
    return len(data) / (time.perf_counter() - t0)


def _dali(files: list[Path], batch: int = 128) -> float | str:
    """data.loader=dali's training pipeline (netspaces.train.dali_input): one pass over the
    files after a warm-up pass, uint8 batches on the GPU."""
    import torch

    from netspaces.train.dali_input import DaliBatches
    from netspaces.train.settings import cpus

    batches = DaliBatches(
        [str(f) for f in files],
        [0] * len(files),
        train=True,
        resolution=224,
        batch_size=min(batch, len(files)),
        rank=0,
        world=1,
        seed=0,
        device=torch.device("cuda"),
        workers=max(1, cpus() - 2),
    )
    for _ in batches:  # warm-up epoch
        pass
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    n = sum(len(y) for _, y in batches)
    torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


# ---------------------------------------------------------------------------- sweep


def sweep(quick: bool, trainer: str) -> None:
    """A 2-model sweep killed (SIGKILL) once a checkpoint exists, then the same command again:
    both records ok, the killed model resumed from its checkpoint, none trained twice."""
    if trainer == "gpu" and not cuda():
        say("sweep_kill_resume", NO_CUDA)
        return
    out = Path(tempfile.mkdtemp(prefix="gpu_check_sweep_"))
    batches = 4 if quick else 60
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "-m",
        f"trainer={trainer}",
        "sweep.n=2",
        "schedule=quick",
        "schedule.epochs=3",
        f"trainer.limit_train_batches={batches}",
        "trainer.limit_val_batches=2",
        "trainer.progress_bar=false",
        f"paths.output={out}",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "1"}
    t0 = time.perf_counter()
    with open(out / "first.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        while proc.poll() is None and not list(out.rglob("*.ckpt")) and time.perf_counter() - t0 < 30:
            time.sleep(0.2)
        killed = proc.poll() is None
        if killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=40)
    text = second.stdout + second.stderr
    records = [json.loads(p.read_text()) for p in out.rglob("result.json")]
    ok = sum(r.get("status") == "ok" for r in records)
    resumed = text.count("resuming from")
    state = "ok" if second.returncode == 0 and ok == 2 and killed else "FAILED"
    say(
        "sweep_kill_resume",
        f"{state} (killed: {killed}; rerun exit {second.returncode}; {ok}/2 records ok; resumed runs: {resumed})",
    )
    say("sweep_kill_resume_s", time.perf_counter() - t0)
    if state == "FAILED":
        print(text[-3000:], file=sys.stderr)


# ---------------------------------------------------------------------------- pack

PACK_SIZES = (1, 2, 4, 8)


def pack(quick: bool, trainer: str = "gpu") -> None:
    """sweep.pack=K on the GPU for K = 1, 2, 4, 8: K sampled 200mf models (samples 0..K-1)
    trained by one pack on one stream of the real Imagenette JPEGs (224 px, the paper's
    augmentation, loader workers), in this process as a pack job runs them (pack.run_pack);
    models/h = K / the pack's wall time, and the peak GPU memory the pack allocated."""
    names = [f"pack_{what}.k{k}" for k in PACK_SIZES for what in ("models_h", "speedup", "peak_mem_gib")]
    gpu = trainer == "gpu"
    if gpu and not cuda():
        for name in names:
            say(name, NO_CUDA)
        return
    train_dir = imagenette()
    if train_dir is None:
        for name in names:
            say(name, "not measured (no imagenette/train under ../shared/data, $NETSPACES_DATA or .gpu_data)")
        return
    import torch

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from benchmarks.common import compose_train
    from netspaces.train.pack import run_pack
    from netspaces.train.run import train as train_one

    batches = 2 if quick else 12  # 16 models and their start-ups in the part's 75 s
    common = [
        f"trainer={trainer}",
        "data=imagefolder",
        f"data.root={train_dir.parent}",
        "regime=200mf",
        "schedule=quick",  # batch 64
        "schedule.epochs=1",
        f"trainer.limit_train_batches={batches}",
        "trainer.limit_val_batches=1",
        "trainer.progress_bar=false",
    ]
    out = Path(tempfile.mkdtemp(prefix="gpu_check_pack_"))

    def one_pack(k: int, tag: str) -> tuple[float, float, int]:
        cfgs = [
            compose_train(
                [*common, f"sample={i}", f"paths.output={out}", f"paths.run_dir={out / tag / f'sample_{i:03d}'}"]
            )
            for i in range(k)
        ]
        if gpu:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        outcomes, _ = run_pack(cfgs, train_one, in_sweep=True)
        if gpu:
            torch.cuda.synchronize()
        ok = sum(o.result is not None and o.result.get("status") == "ok" for o in outcomes)
        peak = torch.cuda.max_memory_allocated() / 2**30 if gpu else "not measured (cpu)"
        return time.perf_counter() - t0, peak, ok

    one_pack(1, "warm")  # untimed: imports, cuDNN autotuning, the page cache
    rate_one = None
    for k in PACK_SIZES:
        seconds, peak, ok = one_pack(k, f"k{k}")
        rate = k / seconds * 3600
        rate_one = rate_one or rate
        say(f"pack_models_h.k{k}", f"{rate:.0f} ({ok}/{k} ok, {seconds:.1f} s)")
        say(f"pack_speedup.k{k}", f"{rate / rate_one:.2f} (models/h vs K=1)")
        say(f"pack_peak_mem_gib.k{k}", peak)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("train", "decode", "sweep", "pack"))
    parser.add_argument("--quick", action="store_true", help="a few images/steps: checks the script, not the speed")
    parser.add_argument(
        "--trainer", choices=("gpu", "cpu"), default="gpu", help="sweep, pack: the trainer (cpu: debugging)"
    )
    args = parser.parse_args(argv)
    if args.part == "train":
        train(args.quick)
    elif args.part == "decode":
        decode(args.quick)
    elif args.part == "pack":
        pack(args.quick, args.trainer)
    else:
        sweep(args.quick, args.trainer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
