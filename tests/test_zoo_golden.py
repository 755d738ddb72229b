"""Golden numbers: our analytic complexity equals pycls's published exact integers."""

import csv
import re
from pathlib import Path

import pytest
import torch

from netspaces.models.anynet import build_model
from netspaces.space.complexity import complexity
from netspaces.space.zoo import canonical_name, get_model_spec, zoo_names

REPO = Path(__file__).resolve().parents[1]
CSV = REPO / "reference" / "pycls_zoo.csv"  # the repository's copy of ../shared/reference/pycls_zoo.csv
SHARED_CSV = REPO.parent / "shared" / "reference" / "pycls_zoo.csv"


def _golden():
    rows = {}
    with open(CSV) as f:
        for r in csv.DictReader(f):
            m = re.search(r"exact flops=(\d+) params=(\d+) acts=(\d+)", r["notes"])
            if r["family"] != "EfficientNet":
                rows[r["name"]] = tuple(int(x) for x in m.groups())
    return rows


GOLDEN = _golden()


@pytest.mark.skipif(not SHARED_CSV.is_file(), reason=f"{SHARED_CSV} not present")
def test_the_repository_copy_of_the_golden_numbers_is_the_shared_one():
    assert CSV.read_bytes() == SHARED_CSV.read_bytes()


def test_every_reference_model_is_in_the_registry():
    assert len(GOLDEN) == 30
    assert sorted(GOLDEN) == sorted(zoo_names())


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_complexity_equals_published_integers(name):
    cx = complexity(get_model_spec(name))
    assert (cx.flops, cx.params, cx.acts) == GOLDEN[name]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_built_module_parameter_count_equals_params(name):
    with torch.device("meta"):  # shapes only: no memory, no init cost
        model = build_model(get_model_spec(name))
    assert sum(p.numel() for p in model.parameters()) == GOLDEN[name][1]


def test_regnetx_400mf_stages_match_pycls():
    s = get_model_spec("RegNetX-400MF")
    assert (s.ws, s.ds, s.gs) == ((32, 64, 160, 384), (1, 2, 7, 12), (16, 16, 16, 16))


def test_regnetx_12gf_group_adjustment():
    # raw quantized widths are (168, 400, 944, 2240); g=112 moves the first three
    s = get_model_spec("RegNetX-12GF")
    assert s.ws == (224, 448, 896, 2240) and s.ds == (2, 5, 11, 1)


@pytest.mark.parametrize("alias", ["regnetx_400mf", "REGNETX-400MF", "RegNetX_400MF", "regnetx400mf"])
def test_name_aliases(alias):
    assert canonical_name(alias) == "RegNetX-400MF"
    assert canonical_name("regnety_1.6gf") == "RegNetY-1.6GF"


def test_resnet_is_native_anynet():
    s = get_model_spec("ResNeXt-50")
    assert s.stem == "resnet" and s.strides == (1, 2, 2, 2) and s.gs == (4, 8, 16, 32)
