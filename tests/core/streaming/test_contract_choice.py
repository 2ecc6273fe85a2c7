import shutil

import pytest

from trt_tui.core.errors import UserError
from trt_tui.core.graph import load_graph
from trt_tui.core.resources import data_path, demo_model_path
from trt_tui.core.streaming.contract_choice import CHOICES_FILE, ContractChoices, check_contract, find_contract

from .conftest import DEMO_CONTRACT, REPO

NAME = DEMO_CONTRACT.name


def test_shipped_demo_contract_is_the_checkouts_copy():
    assert data_path(NAME).read_bytes() == DEMO_CONTRACT.read_bytes()


def test_demo_model_finds_the_checkouts_contract_first_then_the_shipped_one(tmp_path):
    assert find_contract(demo_model_path(), cwd=REPO) == REPO / "contracts" / NAME
    assert find_contract(demo_model_path(), cwd=tmp_path) == data_path(NAME)  # installed, run elsewhere


def test_user_model_finds_its_neighbour_then_contracts_dir(tmp_path):
    model = tmp_path / "models" / "m.onnx"
    model.parent.mkdir()
    assert find_contract(model, cwd=tmp_path) is None
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "m.contract.json").write_text("{}")
    assert find_contract(model, cwd=tmp_path) == tmp_path / "contracts" / "m.contract.json"
    (model.parent / "m.contract.json").write_text("{}")
    assert find_contract(model, cwd=tmp_path) == model.parent / "m.contract.json"


def test_check_contract_missing_malformed_and_wrong_model(tmp_path, demo_model, models):
    index = load_graph(demo_model)
    contract, warnings = check_contract(DEMO_CONTRACT, index)
    assert contract.path == DEMO_CONTRACT and isinstance(warnings, list)
    with pytest.raises(UserError, match="no such file"):
        check_contract(tmp_path / "nope.contract.json", index)
    bad = tmp_path / "bad.contract.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match=r"bad\.contract\.json:1:2: invalid JSON"):
        check_contract(bad, index)
    other = load_graph(models["odd_names"])
    with pytest.raises(UserError, match=NAME):
        check_contract(DEMO_CONTRACT, other)


def test_choices_are_remembered_per_model_and_forgotten_when_the_file_goes(tmp_path):
    choices = ContractChoices(tmp_path / "state")
    model, contract = tmp_path / "m.onnx", shutil.copy(DEMO_CONTRACT, tmp_path / "mine.json")
    assert choices.get(model) is None
    choices.remember(model, contract)
    assert ContractChoices(tmp_path / "state").get(model) == contract.resolve()
    assert choices.get(tmp_path / "other.onnx") is None
    contract.unlink()
    assert choices.get(model) is None


def test_a_damaged_choices_file_is_nothing_remembered_and_is_rewritten(tmp_path):
    (tmp_path / CHOICES_FILE).write_text("[1, 2")
    choices = ContractChoices(tmp_path)
    assert choices.get(tmp_path / "m.onnx") is None
    choices.remember(tmp_path / "m.onnx", DEMO_CONTRACT)
    assert choices.get(tmp_path / "m.onnx") == DEMO_CONTRACT.resolve()
