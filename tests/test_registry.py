"""Registries (``groklab.registry``): groklab's own entries found in their packages, entries registered from
Python, names and settings that clash refused, RunConfig's settings following the registries."""

import pytest

from groklab import RunConfig
from groklab.config import FIELDS, fields
from groklab.errors import ConfigError
from groklab.fields import Field
from groklab.interventions import INTERVENTIONS
from groklab.losses import LOSSES
from groklab.models import MODELS
from groklab.rules import RULES, UpdateRule
from groklab.rules.sgd import sgd
from groklab.tasks import TASKS


def test_each_registry_finds_groklabs_own_entries_in_its_package_in_their_order():
    assert list(TASKS)[:4] == ["add", "sub", "mul", "div"] and {"s5_mul", "custom", "group", "parity"} <= set(TASKS)
    assert list(MODELS) == ["transformer", "mlp"] and list(LOSSES) == ["cross_entropy", "stablemax", "mse"]
    assert list(RULES) == ["adamw", "adam", "sgd", "muon", "egd"]
    assert list(INTERVENTIONS) == ["grokfast_ema", "grokfast_ma", "orthograd", "grad_noise", "weight_noise"]


def test_a_fields_owners_are_the_entries_that_declare_it():
    assert RULES.owners()["beta1"] == ("adamw", "adam", "muon", "egd") and RULES.owners()["momentum"] == ("sgd",)
    assert MODELS.owners()["d_model"] == ("transformer", "mlp") and MODELS.owners()["n_heads"] == ("transformer",)


def test_an_update_rule_registered_from_python_brings_its_setting_to_runconfig_and_takes_it_away():
    nesterov = UpdateRule("nesterov", "SGD with a setting of its own", False, ("exp_avg",), sgd,
                          (Field("nesterov_mu", 0.9, "its momentum", min=0.0, lt=1.0),))
    RULES.register(nesterov)
    try:
        cfg = RunConfig(optimizer="nesterov", nesterov_mu=0.5)
        assert cfg.nesterov_mu == 0.5 and "nesterov_mu" in fields()
        assert RunConfig().hash() == RunConfig(nesterov_mu=0.9).hash()  # at its default: no new identity
        with pytest.raises(ConfigError, match="nesterov_mu 0.5 does not apply to optimizer 'adamw'; only to "
                                              "optimizer nesterov"):
            RunConfig(nesterov_mu=0.5)
        with pytest.raises(ConfigError, match="update rule 'nesterov' exists already; replace=True"):
            RULES.register(nesterov)
    finally:
        RULES.unregister("nesterov")
    assert "nesterov_mu" not in FIELDS
    with pytest.raises(ConfigError, match="unknown config key 'nesterov_mu'"):
        RunConfig(nesterov_mu=0.5)


@pytest.mark.parametrize("name, field, message", [
    ("adamw", (), "update rule 'adamw' exists already"),
    ("mine", (Field("lr", 1.0, "taken"),), "update rule 'mine': field lr is a setting of RunConfig already"),
    ("mine", (Field("d_model", 1, "taken"),), "update rule 'mine': field d_model is a setting of model already"),
    ("mine", (Field("beta1", 0.5, "other default"),), "field beta1 is declared twice")])
def test_a_name_or_a_setting_that_is_taken_is_refused(name, field, message):
    with pytest.raises(ConfigError, match=message):
        RULES.register(UpdateRule(name, "clashes", True, (), sgd, field))
    assert "mine" not in RULES


def test_groklabs_own_entries_cannot_be_removed_and_unknown_names_suggest_the_close_one():
    with pytest.raises(ConfigError, match="groklab's own"):
        RULES.unregister("sgd")
    with pytest.raises(ConfigError, match="optimizer 'adamm' is not allowed; allowed: adamw, adam, sgd, muon, egd; did you "
                                          "mean 'adam'"):
        RULES["adamm"]
