"""data.loader=dali: NVIDIA DALI reads the same image tree (the same file list and labels as
the other loaders, cached by file_lists.py), decodes on the GPU (the hardware JPEG decoder
where the GPU has one) and random-resized-crops there, sharded by rank. Optional:
`pip install netspaces[dali]`; settings refuse data.loader=dali with one line when the
package is missing.

It emits uint8 (N, 3, R, R) batches on the device, normalised (and PCA-lit) by the same
on-device step as the other loaders. Training: DALI's random crop (area 0.08-1, aspect
3/4-4/3) fused with the decoder, resize to R x R, random flip; evaluation: decode, resize the
shorter side to R·256/224, center crop. Each rank reads its own contiguous shard; training
reshuffles within the reader's buffer every epoch (DALI's own shuffling, seeded), and
evaluation reads its shard once, unpadded, so every image counts once.
"""

from __future__ import annotations

import torch


def _pipeline(
    files,
    labels,
    *,
    train: bool,
    resolution: int,
    batch_size: int,
    rank: int,
    world: int,
    seed: int,
    device: torch.device,
    workers: int,
):
    """The DALI pipeline of one split on `device`: a CUDA device decodes on the GPU ("mixed"),
    the CPU runs DALI's CPU backend (tests, and a check without a GPU)."""
    from nvidia.dali import fn, pipeline_def, types

    gpu = device.type == "cuda"
    decoder = "mixed" if gpu else "cpu"

    @pipeline_def(
        batch_size=batch_size,
        num_threads=max(1, workers),
        device_id=(device.index or 0) if gpu else None,
        seed=seed + rank,
    )
    def images():
        jpegs, lab = fn.readers.file(
            files=files,
            labels=labels,
            shard_id=rank,
            num_shards=world,
            random_shuffle=train,
            pad_last_batch=False,
            name="Reader",
        )
        if train:
            im = fn.decoders.image_random_crop(
                jpegs,
                device=decoder,
                output_type=types.RGB,
                random_area=[0.08, 1.0],
                random_aspect_ratio=[3 / 4, 4 / 3],
            )
            im = fn.resize(im, resize_x=resolution, resize_y=resolution)
            mirror = fn.random.coin_flip(probability=0.5)
        else:
            im = fn.decoders.image(jpegs, device=decoder, output_type=types.RGB)
            im = fn.resize(im, resize_shorter=round(resolution * 256 / 224))
            mirror = 0
        im = fn.crop_mirror_normalize(
            im, dtype=types.UINT8, output_layout="CHW", crop=(resolution, resolution), mirror=mirror
        )
        return im, (lab.gpu() if gpu else lab)

    return images()


class DaliBatches:
    """The DALI pipeline of one split as an iterable of (uint8 images, labels) on the GPU,
    with a length (batches per epoch of this rank) and a sampler stand-in for set_epoch."""

    def __init__(
        self,
        files: list[str],
        labels: list[int],
        *,
        train: bool,
        resolution: int,
        batch_size: int,
        rank: int,
        world: int,
        seed: int,
        device: torch.device,
        workers: int,
    ) -> None:
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        pipe = _pipeline(
            files,
            labels,
            train=train,
            resolution=resolution,
            batch_size=batch_size,
            rank=rank,
            world=world,
            seed=seed,
            device=device,
            workers=workers,
        )
        pipe.build()
        n = len(files)
        shard = n * (rank + 1) // world - n * rank // world  # DALI's contiguous shard of this rank
        self.batches = shard // batch_size if train else -(-shard // batch_size)
        self.iterator = DALIGenericIterator(
            [pipe],
            ["x", "y"],
            reader_name="Reader",
            last_batch_policy=LastBatchPolicy.DROP if train else LastBatchPolicy.PARTIAL,
            auto_reset=True,
        )
        self.sampler = None

    def __len__(self) -> int:
        return self.batches

    def __iter__(self):
        for out in self.iterator:
            yield out[0]["x"], out[0]["y"].view(-1).long()
