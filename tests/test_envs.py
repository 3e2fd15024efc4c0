"""envs/tunetrace.yaml, the conda env of `--sdm conda`, is generated from pyproject.toml and constraints.txt
(envs/make_env.py) and installs nothing by a path relative to the env file."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from conftest import REPO


@pytest.fixture(scope="module")
def make_env():
    spec = importlib.util.spec_from_file_location("make_env", REPO / "envs" / "make_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_env_file_is_in_step_with_constraints(make_env) -> None:
    """The committed env file is what make_env.py writes now; else rerun `python envs/make_env.py`."""
    assert make_env.ENV_FILE.read_text() == make_env.expected(), "rerun `python envs/make_env.py`"


def test_env_pins_every_dependency_at_its_constraint(make_env) -> None:
    """Each pin of constraints.txt that the package needs appears verbatim; dev tools and DeepSpeed do not."""
    env = yaml.safe_load(make_env.ENV_FILE.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pinned = make_env.pins((REPO / "constraints.txt").read_text())
    assert {pinned[n] for n in ("torch", "scipy", "transformers", "snakemake")} <= set(pip)
    assert not {pinned[n] for n in ("pytest", "ruff", "deepspeed")} & set(pip)


def test_env_installs_nothing_by_relative_path(make_env) -> None:
    """No `-e ..` or other path: Snakemake builds the env from a copy under .snakemake/conda/."""
    env = yaml.safe_load(make_env.ENV_FILE.read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert not [r for r in pip if r.startswith(("-e", ".", "/")) or "file:" in r]


def test_a_changed_pin_changes_the_env(make_env) -> None:
    """A new version in constraints.txt shows in the generated env (the sync test can fail)."""
    pyproject = (REPO / "pyproject.toml").read_text()
    constraints = (REPO / "constraints.txt").read_text().replace("scipy==", "scipy==0.0.0+")
    assert "scipy==0.0.0+" in make_env.render(pyproject, constraints)
