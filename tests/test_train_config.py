"""The Hydra config tree: groups and options, names, the sweep, and value checks."""

from __future__ import annotations

import pytest
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from conftest import REPO, compose_train, group_options
from netspaces.errors import UserError
from netspaces.space.regimes import regime_names
from netspaces.space.spaces import space_names
from netspaces.space.zoo import zoo_names
from netspaces.train import hydra_conf
from netspaces.train.settings import check_config, data_settings, run_settings, trainer_settings


def _options(group: str) -> set[str]:
    return set(group_options(group))


def test_groups_hold_the_paper_options():
    assert _options("space") == set(space_names())
    assert _options("regime") == set(regime_names())
    assert _options("block") == {"x", "y", "r", "v"}
    assert _options("schedule") == {"population", "paper_100ep", "quick"}
    assert _options("data") == {"digits", "cifar10", "imagenet", "imagefolder"}
    assert _options("logger") == {"csv", "wandb", "tensorboard"}
    assert _options("trainer") == {"cpu", "gpu", "ddp", "ddp_multinode"}
    train_yaml = OmegaConf.load(REPO / "conf" / "train.yaml")
    assert set(train_yaml) == {
        "defaults",
        "seed",
        "sample",
        "protocol",
        "sweep",
        "paths",
        "perf",
    }  # a few top-level keys


def test_default_config_is_sampled_regnetx_400mf_on_digits():
    cfg = compose_train()
    assert (cfg.model.kind, cfg.space.name, cfg.regime.name, cfg.block.name) == ("sampled", "regnetx", "400mf", "x")
    assert (cfg.data.name, cfg.data.resolution, cfg.schedule.name, cfg.trainer.accelerator) == (
        "digits",
        32,
        "population",
        "cpu",
    )
    assert cfg.sweep.n == 100
    assert cfg.sweep.name == "regnetx-400mf-digits-population-s0"


def test_schedules_follow_the_paper():
    pop = compose_train().schedule
    assert (pop.epochs, pop.warmup_epochs, pop.base_lr, pop.momentum, pop.nesterov, pop.weight_decay) == (
        10,
        0,
        0.1,
        0.9,
        True,
        5e-5,
    )
    assert pop.zero_init_final_gamma is True  # short schedules blow up without it (DESIGN.md)
    assert "ZERO_INIT_FINAL_GAMMA" in (REPO / "conf" / "schedule" / "population.yaml").read_text()
    final = compose_train(["schedule=paper_100ep"]).schedule
    assert (final.epochs, final.warmup_epochs, final.warmup_factor, final.zero_init_final_gamma) == (100, 5, 0.1, False)


def test_a_space_brings_its_block_and_the_command_line_wins():
    assert compose_train(["space=regnety"]).block.name == "y"
    cfg = compose_train(["space=regnety", "block=r"])
    assert cfg.block.name == "r"
    assert cfg.sweep.name == "regnety_r-400mf-digits-population-s0"  # another population, another name


@pytest.mark.parametrize(
    "option,kind,name",
    [
        ("regnety_4.0gf", "zoo", "RegNetY-4.0GF"),
        ("regnetx_400mf", "zoo", "RegNetX-400MF"),
        ("resnet50", "zoo", "ResNet-50"),
        ("resnext101", "zoo", "ResNeXt-101"),
        ("efficientnet_b0", "timm", "efficientnet_b0"),
    ],
)
def test_model_options_come_from_the_registries(option, kind, name):
    cfg = compose_train([f"model={option}"])
    assert (cfg.model.kind, cfg.model.name) == (kind, name)
    assert cfg.sweep.name.startswith(option + "-digits-")


def test_every_zoo_model_is_an_option_and_efficientnet_brings_its_recipe():
    for name in zoo_names():
        assert compose_train([f"model={hydra_conf.zoo_option(name)}"]).model.name == name
    eff = compose_train(["model=efficientnet_b3"]).model
    assert (eff.base_lr, eff.weight_decay) == (0.2, 1e-5)


@pytest.mark.parametrize(
    "override,group",
    [
        ("space=regnetz", "space"),
        ("model=regnetq_9gf", "model"),
        ("data=mnist", "data"),
        ("schedule=forever", "schedule"),
    ],
)
def test_unknown_options_list_the_choices(override, group):
    with pytest.raises(MissingConfigException) as err:
        compose_train([override])
    assert f"Available options in '{group}'" in str(err.value) or err.value.options


def test_sweep_layout_and_sample_sweep():
    cfg = compose_train(["sweep.n=8", "paths.output=/x"], hydra=True)
    assert cfg.hydra.sweep.dir == "/x/sweeps/regnetx-400mf-digits-population-s0"
    assert cfg.hydra.sweeper.params.sample == "range(0,8)"
    assert hydra_conf.run_subdir("sampled", 3, "", 3) == "sample_003"
    assert hydra_conf.run_subdir("sampled", 3, "seed=1", 3) == "sample_003,seed=1"
    assert hydra_conf.run_subdir("zoo", 0, "", 0) == "run"
    # a zoo model, or a sweep over zoo models, is not multiplied by the sample sweep
    assert hydra_conf.sample_sweep("zoo", 100, []) == "0"
    assert hydra_conf.sample_sweep("sampled", 100, ["model=regnetx_200mf,regnetx_400mf"]) == "0"
    assert hydra_conf.sample_sweep("sampled", 4, ["space=anynetx_a"]) == "range(0,4)"


@pytest.mark.filterwarnings("ignore:(?s).*validated against ConfigStore schema")
def test_submitit_slurm_has_cluster_defaults():
    cfg = compose_train(["hydra/launcher=submitit_slurm", "trainer=ddp", "trainer.devices=4"], hydra=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.tasks_per_node == 4 and launcher.gpus_per_node == 4  # one task per GPU
    assert launcher.timeout_min >= 60 and launcher.max_num_timeout > 0  # time limit, requeue on timeout
    assert launcher.signal_delay_s > 0
    cpu = compose_train(["hydra/launcher=submitit_slurm"], hydra=True).hydra.launcher
    assert (cpu.tasks_per_node, cpu.gpus_per_node) == (1, None)  # trainer=cpu asks for no GPU


def test_settings_are_typed_and_scale_the_lr(tmp_path):
    cfg = compose_train(["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", f"paths.run_dir={tmp_path}"])
    s = run_settings(cfg)
    assert s.optim.global_batch == 256 and s.optim.lr == pytest.approx(0.2)  # 0.1 · 256/128
    assert s.trainer.distributed and s.model.kind == "sampled" and s.model.zero_init_final_gamma
    eff = run_settings(compose_train(["model=efficientnet_b0", f"paths.run_dir={tmp_path}"]))
    assert eff.optim.lr == pytest.approx(0.2) and eff.optim.weight_decay == 1e-5


@pytest.mark.parametrize(
    "override,named",
    [
        ("schedule.base_lr=-0.1", "schedule.base_lr=-0.1"),
        ("schedule.epochs=0", "schedule.epochs=0"),
        ("schedule.momentum=1.5", "schedule.momentum=1.5"),
        ("schedule.weight_decay=-1", "schedule.weight_decay=-1"),
        ("schedule.warmup_epochs=20", "schedule.warmup_epochs=20"),
        ("trainer.precision=8-bit", "trainer.precision='8-bit'"),
        ("trainer.devices=0", "trainer.devices=0"),
        ("sweep.n=0", "sweep.n=0"),
        ("data.limit_per_class=0", "data.limit_per_class=0"),
        ("model.stem=huge", "model.stem='huge'"),
        ("perf.cudnn_benchmark=maybe", "perf.cudnn_benchmark='maybe'"),
        ("schedule.eval_every=-1", "schedule.eval_every=-1"),
        ("regime.tolerance=2", "regime.tolerance=2"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(override, named):
    with pytest.raises(UserError) as err:
        check_config(compose_train([override]))
    message = str(err.value)
    assert named in message and "\n" not in message


def test_data_roots_are_checked(tmp_path):
    from netspaces.train.data import check_data

    def check(overrides):
        cfg = compose_train(overrides)
        check_data(data_settings(cfg, trainer_settings(cfg)))

    with pytest.raises(UserError, match="does not exist"):
        check(["data=imagenet", f"data.root={tmp_path / 'nope'}"])
    (tmp_path / "empty" / "train" / "cls").mkdir(parents=True)
    (tmp_path / "empty" / "val" / "cls").mkdir(parents=True)
    with pytest.raises(UserError, match="no images under"):
        check(["data=imagefolder", f"data.root={tmp_path / 'empty'}"])
    with pytest.raises(UserError, match="data.root is required"):
        check(["data=imagefolder"])
