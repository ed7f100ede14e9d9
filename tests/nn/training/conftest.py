"""The fixtures of the tests that run train.py (defined in test_cli), for the
other test files of this folder."""

from test_cli import cli_env, fashion  # noqa: F401
