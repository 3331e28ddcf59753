"""Test rows live in the package (``lutcodegen.analysis.rowsets``) so the accuracy figures the
project publishes come from the same rows as the tests."""

from lutcodegen.analysis.rowsets import (  # noqa: F401
    edge_rows,
    edge_rows16,
    every_difference,
    every_difference16,
    gaussian,
    gaussian16,
    peak_and_plateau,
    uniform,
    uniform16,
)
