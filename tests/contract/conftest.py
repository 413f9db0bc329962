"""Fixtures shared by this folder's contract tests."""

from repo_rig import rig  # noqa: F401 (the repository contract's fixture, by name)
