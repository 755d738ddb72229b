"""Multi-node DDP through SLURM's task launch (trainer=ddp_multinode): every task sees the
environment SLURM gives a 2-node x 2-GPU job, and Lightning's SLURM environment turns it into
the right rank, world size and rendezvous address, with the lr scaled by the global batch.
CUDA is mocked: what is checked is the bookkeeping, not NCCL."""

from __future__ import annotations

import os

import pytest
import torch

from conftest import compose_train

NODES, GPUS = 2, 2
BATCH = 32  # per GPU: a global batch of 32 x 2 x 2 = 128


def slurm_task(monkeypatch, procid: int) -> None:
    """The variables srun sets for task `procid` of `sbatch --nodes=2 --ntasks-per-node=2`
    (what submitit asks for with nodes=2, tasks_per_node=2)."""
    for key in ("LOCAL_RANK", "RANK", "WORLD_SIZE", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    node, local = divmod(procid, GPUS)
    for key, value in {
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NAME": "regnetx-400mf-digits-population-s0",
        "SLURM_NNODES": str(NODES),
        "SLURM_NODELIST": "gpu-a[07-08]",
        "SLURM_NTASKS": str(NODES * GPUS),
        "SLURM_NTASKS_PER_NODE": str(GPUS),
        "SLURM_PROCID": str(procid),
        "SLURM_NODEID": str(node),
        "SLURM_LOCALID": str(local),
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(autouse=True)
def process_state_restored():
    """Lightning writes what a rank knows into the process: MASTER_ADDR/PORT into os.environ,
    the global rank into rank_zero_only. Left behind, every later test's run would think it
    is rank 3 and write no record."""
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    env, rank = dict(os.environ), getattr(rank_zero_only, "rank", 0)
    yield
    os.environ.clear()
    os.environ.update(env)
    rank_zero_only.rank = rank


@pytest.fixture
def two_gpus(monkeypatch):
    """This node has two CUDA GPUs, as far as torch and Lightning can tell."""
    from lightning.fabric.accelerators import cuda

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: GPUS)
    monkeypatch.setattr(cuda, "num_cuda_devices", lambda: GPUS)
    monkeypatch.setattr(cuda, "is_cuda_available", lambda: True)


def _settings(tmp_path, *extra):
    from netspaces.train.settings import run_settings

    return run_settings(
        compose_train(
            ["trainer=ddp_multinode", f"trainer.devices={GPUS}", f"schedule.batch_size={BATCH}", *extra]
            + [f"paths.run_dir={tmp_path}"]
        )
    )


@pytest.mark.parametrize("procid", [0, 3])
def test_each_slurm_task_is_its_rank_of_the_two_node_job(procid, tmp_path, monkeypatch, two_gpus):
    from lightning.fabric.plugins.environments import SLURMEnvironment

    from netspaces.train import ddp
    from netspaces.train.trainer import build_trainer

    slurm_task(monkeypatch, procid)
    s = _settings(tmp_path)
    assert ddp.externally_launched()  # SLURM started the ranks: netspaces starts none
    assert (s.trainer.num_nodes, s.trainer.devices, s.trainer.world_size) == (NODES, GPUS, NODES * GPUS)
    # the lr follows the global batch over both nodes: 0.1 x (32 x 4) / 128
    assert s.optim.global_batch == BATCH * NODES * GPUS == 128
    assert s.optim.lr == pytest.approx(0.1)

    trainer = build_trainer(s, [])
    env = trainer.strategy.cluster_environment
    assert isinstance(env, SLURMEnvironment) and env.auto_requeue is False  # submitit requeues, not Lightning
    node, local = divmod(procid, GPUS)
    assert (trainer.global_rank, trainer.node_rank, trainer.local_rank) == (procid, node, local)
    assert (trainer.world_size, trainer.num_nodes, trainer.num_devices) == (NODES * GPUS, NODES, GPUS)
    assert trainer.world_size == s.trainer.world_size  # the lr's world is the one Lightning connects
    assert trainer.strategy.root_device == torch.device("cuda", local)
    assert (env.main_address, env.main_port) == ("gpu-a07", 15000 + 4242)  # every task agrees


def test_the_lr_scales_with_the_nodes(tmp_path, monkeypatch, two_gpus):
    slurm_task(monkeypatch, 0)
    monkeypatch.setenv("SLURM_NNODES", "4")
    monkeypatch.setenv("SLURM_NTASKS", str(4 * GPUS))
    s = _settings(tmp_path, "trainer.num_nodes=4")
    assert s.trainer.world_size == 8 and s.optim.global_batch == 256 and s.optim.lr == pytest.approx(0.2)


def test_a_job_laid_out_otherwise_than_the_config_is_refused_in_one_line(tmp_path, monkeypatch, two_gpus):
    # Lightning takes the world size from SLURM and does not check it against the config
    # under SLURM: the lr would be scaled for 4 ranks while 6 train
    from netspaces.errors import UserError

    slurm_task(monkeypatch, 0)
    monkeypatch.setenv("SLURM_NNODES", "3")
    monkeypatch.setenv("SLURM_NTASKS", "6")
    with pytest.raises(UserError, match=r"^trainer.num_nodes=2 is not allowed: this SLURM job runs 6 task\(s\) on 3"):
        _settings(tmp_path)


@pytest.mark.filterwarnings("ignore:(?s).*validated against ConfigStore schema")
def test_submitit_asks_slurm_for_the_job_the_tasks_see():
    launcher = compose_train(
        ["hydra/launcher=submitit_slurm", "trainer=ddp_multinode", f"trainer.devices={GPUS}"], hydra=True
    ).hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (NODES, GPUS, GPUS)


def test_several_nodes_without_slurm_are_refused_in_one_line(tmp_path, monkeypatch, two_gpus):
    from netspaces.errors import UserError

    for key in ("SLURM_NTASKS", "SLURM_JOB_ID", "LOCAL_RANK", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(UserError, match=r"^trainer.num_nodes=2 is not allowed: more than 1 only where SLURM"):
        _settings(tmp_path)
