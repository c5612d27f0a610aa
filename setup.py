"""The one compiled part of retrain-cli; everything else is configured in pyproject.toml.

`retrain_cli._treescore` scores LightGBM's numerical trees with QuickScorer (see
retrain_cli/trainers/tree_scoring.py). It is optional: without a C compiler the install goes on
and LightGBM scores every model itself.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "retrain_cli._treescore",
            sources=["retrain_cli/_treescore.c"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
