"""The environment is read in one module, whose declaration is the table people read."""

import re
from pathlib import Path

import dagster as dg

from support_nlp.core.twcs import BUNDLED_SAMPLE
from support_nlp.definitions import build_resources
from support_nlp.settings import S3_REGION, SOURCE, VARIABLES, read_settings, variables_table

ROOT = Path(__file__).parent.parent
VARIABLE_NAME = re.compile(r"\bSUPPORT_NLP_[A-Z0-9_]+")
# Read by Dagster's instance config (deploy/aws) and by the test suite, not by the code location.
NOT_CODE_LOCATION = {"SUPPORT_NLP_ECS_EXECUTION_ROLE_ARN", "SUPPORT_NLP_ECS_RUN_ROLE_ARN", "SUPPORT_NLP_ECS_LOG_GROUP"}


def test_the_readme_table_is_the_declared_one():
    assert variables_table() in (ROOT / "README.md").read_text()


def test_every_variable_a_deployment_sets_is_declared():
    declared = {variable.name for variable in VARIABLES}
    for name in [".env.example", "docker-compose.yaml", *(str(p.relative_to(ROOT)) for p in ROOT.glob("deploy/*/*"))]:
        used = set(VARIABLE_NAME.findall((ROOT / name).read_text())) - NOT_CODE_LOCATION
        assert used <= declared, f"{name} sets {sorted(used - declared)}, which support_nlp.settings does not read"


def test_no_other_module_names_a_variable_in_code():
    named_in_code = re.compile(r"[\"']SUPPORT_NLP_")
    modules = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "support_nlp").rglob("*.py")
        if named_in_code.search(path.read_text())
    }
    assert modules == {"support_nlp/settings.py"}


def test_defaults_follow_from_each_other(tmp_path):
    settings = read_settings({"SUPPORT_NLP_HOME": str(tmp_path), "SUPPORT_NLP_SOURCE": ""})
    assert settings.source == str(BUNDLED_SAMPLE)  # empty is unset
    assert settings.storage == str(tmp_path / "storage")
    assert settings.landing == str(tmp_path / "landing")
    assert settings.embedding_cache_in("s3://bucket/artifacts/") == "s3://bucket/artifacts/embedding_cache"
    assert read_settings({"SUPPORT_NLP_EMBEDDING_CACHE": "off"}).embedding_cache_in("anywhere") is None
    assert settings.s3_endpoint_url is None and settings.environment == {"SUPPORT_NLP_HOME"}


def test_resource_config_names_the_variables_that_set_it(monkeypatch, tmp_path):
    monkeypatch.setenv(S3_REGION.name, "eu-west-1")
    monkeypatch.setenv(SOURCE.name, str(tmp_path / "twcs.csv"))
    monkeypatch.delenv("SUPPORT_NLP_S3_ENDPOINT_URL", raising=False)
    resources = build_resources(storage=str(tmp_path / "storage"))

    source = resources["tweet_source"]
    assert isinstance(source.path, dg.EnvVar) and source.path.env_var_name == SOURCE.name
    # One store for every resource and IO manager: the region set once reaches all of them.
    stores = [resource.store for resource in resources.values()]
    assert all(store is stores[0] for store in stores)
    assert stores[0].region.env_var_name == S3_REGION.name
    assert stores[0].endpoint_url is None
