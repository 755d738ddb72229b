"""data.loader=gpu: JPEGs decoded on the GPU by torchvision's decode_jpeg (nvJPEG), no extra
package. Loader workers only read each file's bytes; the batch is decoded, cropped, flipped
and resized on the device (on the prefetcher's side stream). A file that is not a JPEG (a PNG
in the tree) is decoded by PIL in the worker and travels as uint8 pixels instead.

The augmentation is the paper's, as the PIL path has it: random-resized crop (area 0.08-1,
aspect 3/4-4/3, torchvision's sampling) + horizontal flip for training; resize to
resolution·256/224 then center crop for evaluation. Resizing is bilinear with antialiasing on
tensors, close to but not bit-equal with PIL's.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as F2
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg

JPEG_MAGIC = b"\xff\xd8\xff"

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec; decode_jpeg on CUDA is
# what this loader is, and still works: one warning per batch would flood the log
warnings.filterwarnings("ignore", message=".*image decoding and encoding capabilities of TorchVision are deprecated")


class EncodedImages(Dataset):
    """(encoded bytes or decoded uint8 pixels, label) of listed files: JPEG bytes as a 1-D
    uint8 tensor, anything else decoded to (3, H, W) uint8 by `open_rgb` (data.open_rgb)."""

    def __init__(self, paths: list[str], labels: list[int], open_rgb: Callable) -> None:
        self.paths, self.labels, self.open_rgb = paths, labels, open_rgb

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        path = self.paths[i]
        with open(path, "rb") as f:
            data = f.read()
        if data[:3] == JPEG_MAGIC:
            return torch.frombuffer(bytearray(data), dtype=torch.uint8), self.labels[i]
        return T.functional.pil_to_tensor(self.open_rgb(path)), self.labels[i]


def collate_encoded(batch):
    """A list of images of different sizes (encoded or not) and the labels as one tensor."""
    return [x for x, _ in batch], torch.tensor([y for _, y in batch])


def _decode(items: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    """Each item as (3, H, W) uint8 on `device`: the JPEGs decoded there in one batch (one by
    one when the batch call refuses one, a CMYK JPEG decoded on the CPU), pixels copied."""
    jpeg = [i for i, x in enumerate(items) if x.dim() == 1]
    out: list[torch.Tensor | None] = [None if x.dim() == 1 else x.to(device, non_blocking=True) for x in items]
    if jpeg:
        data = [items[i] for i in jpeg]
        try:
            decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
        except RuntimeError:  # one odd file (CMYK, progressive on an old nvJPEG): one at a time
            decoded = [_decode_one(d, device) for d in data]
        for i, im in zip(jpeg, decoded):
            out[i] = im
    return out  # type: ignore[return-value]


def _decode_one(data: torch.Tensor, device: torch.device) -> torch.Tensor:
    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        return decode_jpeg(data, mode=ImageReadMode.RGB).to(device)


def decode_batch(items: list[torch.Tensor], device: torch.device, resolution: int, train: bool) -> torch.Tensor:
    """A batch of (resolution x resolution) uint8 images (N, 3, R, R) on `device`, augmented
    for training or resized + center-cropped for evaluation. Crop boxes and flips come from
    torch's global generator (seeded per run, as the PIL path's workers are)."""
    rrc = T.RandomResizedCrop(resolution, scale=(0.08, 1.0))
    short = round(resolution * 256 / 224)
    out = []
    for im in _decode(items, device):
        if train:
            i, j, h, w = rrc.get_params(im, rrc.scale, rrc.ratio)
            im = F2.resized_crop(im, i, j, h, w, [resolution, resolution], antialias=True)
            if torch.rand(1).item() < 0.5:
                im = im.flip(-1)
        else:
            im = F2.center_crop(F2.resize(im, [short], antialias=True), [resolution, resolution])
        out.append(im)
    return torch.stack(out)
