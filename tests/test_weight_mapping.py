"""Published weights in our models: every zoo RegNet built by netspaces computes exactly what
timm's RegNet of the same name computes once timm's tensors are mapped in (so the models are
built like the reference implementations, not only counted like them); pycls checkpoints load
the same way; `netspaces load-weights` loads and evaluates them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from torch import nn

from conftest import CIFAR10, IMAGENETTE, REPO, needs, subprocess_env
from netspaces.cli import main
from netspaces.errors import UserError
from netspaces.models.baselines import get_network
from netspaces.models.evaluate import IMAGENET_MEAN, IMAGENET_STD, evaluate_folder
from netspaces.models.pretrained import load_weights, map_state_dict
from netspaces.space.zoo import REGNETS


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a shared 2-core machine two spinning threads are slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def timm_name(zoo_name: str) -> str:
    """RegNetX-1.6GF → regnetx_016 (timm names a RegNet by its flops in units of 100 MF)."""
    family, size = zoo_name.lower().split("-")
    mf = float(size[:-2]) * (1000 if size.endswith("gf") else 1)
    return f"{family}_{round(mf / 100):03d}"


def timm_model(zoo_name: str, seed: int = 0) -> nn.Module:
    """timm's model with seeded random weights, and random BN statistics, BN affine parameters
    and biases (timm zero-inits each block's last BN γ and every bias and leaves running stats
    at 0/1: too easy to match)."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(timm_name(zoo_name), pretrained=False)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.2, generator=g)
                m.running_mean.normal_(0.0, 0.2, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.num_batches_tracked.fill_(1234)
            elif isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:  # SE convs, head
                m.bias.normal_(0.0, 0.2, generator=g)
    return model.eval()


def ours(zoo_name: str) -> nn.Module:
    return get_network(zoo_name, num_classes=1000).eval()


def image(res: int = 64) -> torch.Tensor:
    """64 px: the last stage (stride 32) still sees 2x2, so every layer matters."""
    return torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(7))


def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


# ---------------------------------------------------------------- timm: all 24 zoo RegNets


@pytest.mark.parametrize("name", list(REGNETS))  # all 24: ~12 s together here (2 shared cores)
def test_timm_weights_give_equal_logits(name):
    theirs = timm_model(name)
    sd = theirs.state_dict()
    with torch.device("meta"):  # shapes only: its weights all come from timm's (assign=True)
        model = ours(name)
    mapped, naming, used = map_state_dict(sd, model, model_name=name)
    assert naming == "timm"
    assert used == len(sd) and list(mapped) == list(model.state_dict())
    assert len({t.data_ptr() for t in mapped.values()}) == len(sd)  # every tensor of timm's, once
    assert {t.data_ptr() for t in mapped.values()} == {t.data_ptr() for t in sd.values()}
    model.load_state_dict(mapped, strict=True, assign=True)
    x = image()
    a, b = logits(theirs, x), logits(model, x)
    assert a.shape == b.shape == (1, 1000)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), f"max abs difference {(a - b).abs().max().item():.3g}"


def test_the_logit_check_is_not_trivial():
    theirs, model = timm_model("RegNetY-200MF"), ours("RegNetY-200MF")
    x = image()
    assert not torch.allclose(logits(theirs, x), logits(model, x), atol=1e-3)  # before loading
    sd = theirs.state_dict()
    sd["s3.b2.conv2.bn.running_var"] = sd["s3.b2.conv2.bn.running_var"].flip(0)  # one tensor off
    load_weights(model, sd)
    assert not torch.allclose(logits(theirs, x), logits(model, x), atol=1e-3)


def test_timm_names_cover_the_zoo():
    import timm

    names = [timm_name(n) for n in REGNETS]
    assert names[:3] == ["regnetx_002", "regnetx_004", "regnetx_006"] and "regnety_016" in names
    assert set(names) <= set(timm.list_models("regnet*"))


# ---------------------------------------------------------------- pycls checkpoints

# pycls/models/anynet.py: ResBottleneckBlock registers proj, bn, then f = BottleneckTransform
# (a, a_bn, b, b_bn, se.f_ex = [conv, act, conv, sigmoid], c, c_bn); AnyHead.fc. timm's layer → pycls's:
TIMM_TO_PYCLS = {
    "conv1.conv": "f.a",
    "conv1.bn": "f.a_bn",
    "conv2.conv": "f.b",
    "conv2.bn": "f.b_bn",
    "se.fc1": "f.se.f_ex.0",
    "se.fc2": "f.se.f_ex.2",
    "conv3.conv": "f.c",
    "conv3.bn": "f.c_bn",
    "downsample.conv": "proj",
    "downsample.bn": "bn",
}


def pycls_state_dict(timm_sd: dict, *, step_counters: bool = True) -> dict:
    """What pycls's own checkpoint of the same weights holds: pycls names, pycls's order
    (shortcut before the branch), and the first conv in BGR (pycls read images with OpenCV)."""
    out: dict[str, torch.Tensor] = {}
    blocks: dict[str, list[tuple[int, str, torch.Tensor]]] = {}
    for k, v in timm_sd.items():
        if k.endswith("num_batches_tracked") and not step_counters:
            continue
        m = re.fullmatch(r"(s\d+\.b\d+)\.(.+)\.(\w+)", k)
        if m:
            layer = TIMM_TO_PYCLS[m.group(2)]
            blocks.setdefault(m.group(1), []).append(
                (0 if not layer.startswith("f.") else 1, f"{layer}.{m.group(3)}", v)
            )
            continue
        out[k] = v.flip(1) if k == "stem.conv.weight" else v
    head = {k: out.pop(k) for k in ("head.fc.weight", "head.fc.bias")}
    for block, tensors in blocks.items():
        for _, rest, v in sorted(tensors, key=lambda t: t[0]):  # stable: proj/bn first, then f in order
            out[f"{block}.{rest}"] = v
    return {**out, **head}


@pytest.mark.parametrize("name", ["RegNetX-400MF", "RegNetY-800MF", "RegNetX-1.6GF"])
def test_pycls_checkpoint_gives_timm_logits(name, tmp_path):
    theirs = timm_model(name, seed=3)
    sd = pycls_state_dict(theirs.state_dict(), step_counters=name != "RegNetY-800MF")
    assert next(k for k in sd if k.startswith("s1.b1.")) == "s1.b1.proj.weight"
    path = tmp_path / f"{name}.pyth"
    torch.save(
        {"epoch": 99, "model_state": sd, "optimizer_state": {"state": {}}, "cfg": "MODEL:\n  TYPE: regnet\n"}, path
    )
    model = ours(name)
    loaded = load_weights(model, path, model_name=name)
    assert (loaded.naming, loaded.tensors) == ("pycls", len(sd))
    x = image()
    a, b = logits(theirs, x), logits(model, x)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), f"max abs difference {(a - b).abs().max().item():.3g}"


def test_pycls_first_conv_is_turned_from_bgr_to_rgb():
    theirs = timm_model("RegNetX-200MF")
    sd = pycls_state_dict(theirs.state_dict())
    mapped, naming, _ = map_state_dict(sd, ours("RegNetX-200MF"))
    assert naming == "pycls"
    assert torch.equal(mapped["stem.0.weight"], theirs.state_dict()["stem.conv.weight"])
    assert torch.equal(mapped["stem.0.weight"], sd["stem.conv.weight"][:, [2, 1, 0]])


# ---------------------------------------------------------------- our own checkpoints and formats


def test_own_lightning_checkpoint_and_safetensors_load(tmp_path):
    from safetensors.torch import save_file

    src = get_network("RegNetY-200MF", num_classes=1000).eval()
    x = image()
    want = logits(src, x)
    sd = src.state_dict()
    lightning = tmp_path / "last.ckpt"
    torch.save({"epoch": 2, "state_dict": {f"net.{k}": v for k, v in sd.items()}, "loops": {}}, lightning)
    safe = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in theirs_sd("RegNetY-200MF").items()}, str(safe))
    model = ours("RegNetY-200MF")
    assert load_weights(model, lightning).naming == "netspaces"
    assert torch.equal(logits(model, x), want)
    loaded = load_weights(model, safe)
    assert loaded.naming == "timm"
    assert torch.allclose(logits(model, x), logits(timm_model("RegNetY-200MF"), x), rtol=1e-5, atol=1e-5)


def theirs_sd(name: str) -> dict:
    return timm_model(name).state_dict()


def test_model_key_container_and_ddp_prefix(tmp_path):
    sd = theirs_sd("RegNetX-200MF")
    path = tmp_path / "w.pth"
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}}, path)
    assert load_weights(ours("RegNetX-200MF"), path).tensors == len(sd)


# ---------------------------------------------------------------- what does not fit: one line


def _error(model, what, **kw) -> str:
    with pytest.raises(UserError) as e:
        load_weights(model, what, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_other_model_names_the_first_misshaped_tensor(tmp_path):
    path = tmp_path / "x002.pth"
    torch.save(theirs_sd("RegNetX-200MF"), path)
    msg = _error(ours("RegNetX-400MF"), path, model_name="RegNetX-400MF")
    assert msg == (
        f"{path} (timm naming): s1.b1.conv1.conv.weight has shape (24, 32, 1, 1) but RegNetX-400MF's "
        "stages.0.0.f.0.weight expects (32, 32, 1, 1)"
    )


def test_missing_unexpected_and_unknown_tensors_are_named():
    sd = theirs_sd("RegNetY-200MF")
    model = ours("RegNetY-200MF")
    no_var = {k: v for k, v in sd.items() if k != "s2.b1.conv2.bn.running_var"}
    assert (
        "no tensor for RegNetY-200MF's stages.1.0.f.4.running_var (shape (56,)) (expected s2.b1.conv2.bn.running_var)"
        in (_error(model, no_var, model_name="RegNetY-200MF"))
    )
    no_block = {k: v for k, v in sd.items() if not k.startswith("s4.b7.")}
    assert "no tensor for RegNetY-200MF's stages.3.6.f.0.weight" in _error(model, no_block, model_name="RegNetY-200MF")
    extra_block = {**sd, "s4.b8.conv1.conv.weight": sd["s4.b7.conv1.conv.weight"]}
    assert (
        "unexpected tensor s4.b8.conv1.conv.weight (shape (368, 368, 1, 1)): RegNetY-200MF has no stage 4 block 8"
        in (_error(model, extra_block, model_name="RegNetY-200MF"))
    )
    bias = {**sd, "s1.b1.conv1.conv.bias": torch.zeros(24)}
    assert "unexpected tensor s1.b1.conv1.conv.bias (shape (24,))" in _error(model, bias)
    alien = {**sd, "s1.b1.attn.qkv.weight": torch.zeros(3)}
    assert "unexpected tensor s1.b1.attn.qkv.weight (shape (3,)): not a layer of a timm RegNet/AnyNet" in (
        _error(model, alien)
    )
    assert "tensor names are not a RegNet's" in _error(model, {"conv1.weight": torch.zeros(1)})
    assert "unknown weights naming 'keras'" in _error(model, sd, source="keras")
    x_into_y = _error(model, theirs_sd("RegNetX-200MF"))
    assert x_into_y.startswith("the state dict (timm naming): ") and "expects" in x_into_y


def test_unreadable_files_are_one_line(tmp_path):
    model = ours("RegNetX-200MF")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    assert _error(model, garbage).startswith(f"{garbage}: not a PyTorch checkpoint (")
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    assert _error(model, empty).startswith(f"{empty}: not a PyTorch checkpoint (")
    nosd = tmp_path / "nosd.pth"
    torch.save({"epoch": 3, "cfg": "x"}, nosd)
    assert _error(model, nosd).startswith(f"{nosd}: no state dict found (keys epoch, cfg)")
    assert _error(model, tmp_path / "absent.pth") == f"{tmp_path / 'absent.pth'}: no such file"


# ---------------------------------------------------------------- evaluation


def test_evaluation_normalisation_is_the_data_configs():
    conf = yaml.safe_load((REPO / "conf" / "data" / "imagefolder.yaml").read_text())
    assert (tuple(conf["mean"]), tuple(conf["std"])) == (IMAGENET_MEAN, IMAGENET_STD)


class _Constant(nn.Module):
    """Scores ImageNet classes in a fixed order, whatever the image."""

    def __init__(self, ranking: list[int]) -> None:
        super().__init__()
        scores = torch.zeros(1000)
        scores[ranking] = torch.arange(len(ranking), 0, -1, dtype=torch.float)
        self.register_buffer("scores", scores)

    def forward(self, x):
        return self.scores.expand(len(x), -1)


def _eval_transform(resolution: int = 224):
    from netspaces.train.data import folder_transforms
    from netspaces.train.settings import DataSettings

    s = DataSettings(name="imagenet", batch_size=8, resolution=resolution, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return folder_transforms(s, train=False)


@needs(IMAGENETTE)
def test_wnid_folders_are_scored_with_imagenet_indices():
    # Imagenette's classes are ImageNet-1k 0, 217, 482, 491, 497, 566, 569, 571, 574, 701
    model = _Constant([217, 0, 482, 491, 497, 999])
    e = evaluate_folder(
        model, IMAGENETTE / "val", transform=_eval_transform(), num_classes=1000, batch=8, limit_per_class=1
    )
    assert e.imagenet_labels and (e.images, e.classes) == (10, 10)
    assert (e.top1_err, e.top5_err) == (90.0, 50.0)


def _tiny_tree(tmp_path, classes=("airplane", "cat", "ship"), per_class=2):
    root = tmp_path / "val"
    for c in classes:
        (root / c).mkdir(parents=True)
        for f in sorted((CIFAR10 / "test" / c).iterdir())[:per_class]:
            shutil.copy(f, root / c / f.name)
    return root


@needs(CIFAR10)
def test_other_folders_are_scored_in_folder_order(tmp_path):
    root = _tiny_tree(tmp_path)
    e = evaluate_folder(_Constant([1, 2, 0]), root, transform=_eval_transform(64), num_classes=1000, batch=4)
    assert not e.imagenet_labels and (e.images, e.classes) == (6, 3)
    assert (e.top1_err, e.top5_err) == (pytest.approx(200 / 3), 0.0)  # only "cat" (1) is ranked first
    with pytest.raises(UserError, match="3 class folders but the model has 2 classes"):
        evaluate_folder(_Constant([0]), root, transform=_eval_transform(64), num_classes=2)
    (root / "empty").mkdir()
    with pytest.raises(UserError, match="not an image tree"):
        evaluate_folder(_Constant([0]), root, transform=_eval_transform(64), num_classes=1000)


# ---------------------------------------------------------------- the command line


@needs(CIFAR10)
def test_cli_loads_and_evaluates(tmp_path):
    path = tmp_path / "regnetx_002.pth"
    torch.save({"state_dict": theirs_sd("RegNetX-200MF")}, path)
    root = _tiny_tree(tmp_path)
    cmd = [sys.executable, "-m", "netspaces", "load-weights", "regnetx_200mf", str(path)]
    r = subprocess.run(
        [*cmd, "--eval-root", str(root), "--limit", "1", "--batch", "2"],
        capture_output=True,
        text=True,
        env=subprocess_env(tmp_path),
        cwd=REPO,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "loaded 266 tensors (timm naming) into RegNetX-200MF"
    assert re.fullmatch(
        rf"RegNetX-200MF on {re.escape(str(root))} \(3 images, 3 classes, classes in folder order; 224 px center "
        r"crop\): top-1 error \d+\.\d{3}%, top-5 error \d+\.\d{3}%",
        lines[1],
    ), lines[1]


def test_cli_load_only(tmp_path, capsys):
    path = tmp_path / "w.pyth"
    torch.save({"epoch": 1, "model_state": pycls_state_dict(theirs_sd("RegNetY-200MF"))}, path)
    assert main(["load-weights", "RegNetY-200MF", str(path)]) == 0
    assert capsys.readouterr().out == "loaded 318 tensors (pycls naming) into RegNetY-200MF\n"


@pytest.mark.parametrize(
    "args, expected",
    [
        (["RegNetZ-1GF", "{w}"], "unknown model 'RegNetZ-1GF'"),
        (["RegNetX-200MF", "{tmp}/absent.pth"], "{tmp}/absent.pth: no such file"),
        (["RegNetX-400MF", "{w}"], "{w} (timm naming): s1.b1.conv1.conv.weight has shape (24, 32, 1, 1)"),
        (["RegNetX-200MF", "{w}", "--source", "pycls"], "unexpected tensor s1.b1.conv1.conv.weight"),
        (["RegNetX-200MF", "{w}", "--eval-root", "{tmp}/none"], "--eval-root {tmp}/none: no such directory"),
        (["RegNetX-200MF", "{w}", "--eval-root", "{tmp}"], "no class folders under {tmp}/"),
        (["RegNetX-200MF", "{w}", "--limit", "0"], "argument --limit: must be a positive integer"),
        (["RegNetX-200MF", "{w}", "--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, capsys, args, expected):
    w = tmp_path / "x002.pth"
    torch.save(theirs_sd("RegNetX-200MF"), w)
    fill = {"w": str(w), "tmp": str(tmp_path)}
    assert main(["load-weights", *(a.format(**fill) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("netspaces: error: ")
    assert expected.format(**fill) in err
