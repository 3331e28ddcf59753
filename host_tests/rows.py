"""Test rows live in the package (``lutcodegen.analysis.rowsets``) so the accuracy figures the
project publishes come from the same rows as the tests."""

from lutcodegen.analysis.rowsets import (  # noqa: F401
    edge_rows,
    every_difference,
    gaussian,
    peak_and_plateau,
    uniform,
)
