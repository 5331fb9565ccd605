"""The training assets' run config is the core's parameter dataclasses: same fields, same defaults, same checks."""

import dataclasses

import dagster as dg
import pytest

from support_nlp.core.categories import ClusteringConfig
from support_nlp.core.classifier import ClassifierConfig
from support_nlp.dataclass_config import dataclass_from_config
from support_nlp.definitions import defs
from support_nlp.defs.assets.categories import ClassifierTrainingConfig, ClusterLabelsConfig

CONFIG_OF = [(ClusterLabelsConfig, ClusteringConfig), (ClassifierTrainingConfig, ClassifierConfig)]


@pytest.mark.parametrize(("dagster_config", "parameters"), CONFIG_OF)
def test_every_core_parameter_is_run_config_with_its_default(dagster_config, parameters):
    for field in dataclasses.fields(parameters):
        assert dagster_config.model_fields[field.name].default == field.default, field.name
    assert dataclass_from_config(parameters, dagster_config()) == parameters()


def test_run_config_values_reach_the_core_and_its_range_checks():
    assert dataclass_from_config(ClusteringConfig, ClusterLabelsConfig(k_min=8, graph_sample=900)) == ClusteringConfig(
        k_min=8, graph_sample=900
    )
    with pytest.raises(ValueError, match="k range 10..5"):
        dataclass_from_config(ClusteringConfig, ClusterLabelsConfig(k_min=10, k_max=5))


def test_a_closed_choice_outside_its_values_is_refused_at_launch():
    training = defs.resolve_job_def("training")
    dg.validate_run_config(training, {"ops": {"cluster_labels": {"config": {"algorithm": "kmeans"}}}})
    with pytest.raises(dg.DagsterInvalidConfigError, match="algorithm"):
        dg.validate_run_config(training, {"ops": {"cluster_labels": {"config": {"algorithm": "hdbscan"}}}})
