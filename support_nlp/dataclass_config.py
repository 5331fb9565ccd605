"""Dagster run config derived from the core's frozen parameter dataclasses, so that each parameter and its
default are declared once, in the core, and appear in the launchpad with the same name, type and default."""

from __future__ import annotations

import dataclasses
import typing

import dagster as dg
import pydantic

Parameters = typing.TypeVar("Parameters")


def config_fields_of(parameters: type) -> type[dg.Config]:
    """A `dg.Config` holding the fields of the dataclass `parameters`: subclass it beside asset-level options.

    Dagster config cannot hold a dataclass as one field, so the fields are copied flat; `Literal` types become
    enums that Dagster checks when a run is launched."""
    types = typing.get_type_hints(parameters)
    fields = {field.name: (types[field.name], field.default) for field in dataclasses.fields(parameters)}
    return pydantic.create_model(f"{parameters.__name__}Fields", __base__=dg.Config, **fields)


def dataclass_from_config(parameters: type[Parameters], config: dg.Config) -> Parameters:
    """The `parameters` dataclass with the run's values (its own checks, e.g. of ranges, run here)."""
    return parameters(**{field.name: getattr(config, field.name) for field in dataclasses.fields(parameters)})
