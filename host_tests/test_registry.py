"""The option and method registry is the one list: everything that enumerates options agrees."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

import lutcodegen
from lutcodegen import Spec, SpecError
from lutcodegen.cli import build_parser
from lutcodegen.methods import METHOD_RECORDS
from lutcodegen.registry import METHODS, OPTIONS

ROOT = Path(__file__).resolve().parent.parent


def test_spec_fields_are_the_registry_options() -> None:
    assert sorted(f.name for f in dataclasses.fields(Spec)) == sorted(o.name for o in OPTIONS)
    assert {f.name: f.default for f in dataclasses.fields(Spec)} == {
        o.name: o.default for o in OPTIONS
    }


def test_every_method_has_a_record() -> None:
    assert tuple(METHOD_RECORDS) == METHODS
    for method in METHOD_RECORDS.values():
        assert (ROOT / "templates" / method.template).is_file()


def test_every_option_has_a_flag_with_its_help() -> None:
    text = build_parser().format_help()
    for option in OPTIONS:
        assert option.flag in text


@pytest.mark.parametrize("name", [o.name for o in OPTIONS if o.default is not None])
def test_none_is_refused_for_an_option_with_a_default(name: str) -> None:
    with pytest.raises(SpecError, match=name):
        Spec(**{name: None})


def test_unroll_is_validated_at_construction() -> None:
    with pytest.raises(SpecError, match="unroll must be 1, 2, 4 or 8"):
        Spec(unroll=3)


@pytest.mark.parametrize(
    "spec",
    [
        Spec(),
        Spec(method="rexp", sum_mode="linear", sum_shift=4),
        Spec(unroll=2),
        Spec(method="tflite", input_multiplier=1 << 30, input_left_shift=23, diff_min=-248),
    ],
)
def test_the_banner_command_line_parses_back_to_the_same_spec(spec: Spec) -> None:
    args = build_parser().parse_args(shlex.split(spec.command_line())[1:])
    again = Spec(
        **{o.name: getattr(args, o.name) for o in OPTIONS if getattr(args, o.name) is not None}
    )
    assert again == spec


def test_every_option_is_settable_from_platformio_ini() -> None:
    from lutcodegen.firmware.build import spec_from_options

    values = {"unroll": "2", "table_layout": "compact", "bits": "12", "max_row": "100"}
    spec = spec_from_options(values.get)
    assert (spec.unroll, spec.table_layout, spec.bits, spec.max_row) == (2, "compact", 12, 100)


def test_library_json_has_the_package_version() -> None:
    data = json.loads((ROOT / "library.json").read_text(encoding="utf-8"))
    assert data["version"] == lutcodegen.__version__
