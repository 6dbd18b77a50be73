"""The repository's own recipes stay runnable as the code under them changes: every training config it ships
(`examples/configs`, the benchmarks' configs) loads and names only model keys its method's config has, with values
that config accepts; every shell script (`scripts`, `benchmarks`, `.ci/run`) parses; every name a benchmark's
Python script imports from latentlm still exists. The device and benchmark scripts run on machines or budgets CI
never sees, so a broken one would otherwise surface only when a GPU is lent or a measurement is re-run."""

import ast
import importlib
import subprocess
from pathlib import Path

import pytest

from latentlm.models.registry import get_method
from latentlm.training.builders import _check_model_keys, load_tokenizer, model_config_kwargs
from latentlm.training.config import load_config


ROOT = Path(__file__).parents[1]


TRAINING_CONFIGS = sorted([*ROOT.glob("examples/configs/*.yaml"), *ROOT.glob("benchmarks/**/*.yaml")])
SHELL_SCRIPTS = sorted([*ROOT.glob("scripts/*.sh"), *ROOT.glob("benchmarks/**/*.sh"), ROOT / ".ci" / "run"])
PYTHON_SCRIPTS = sorted([*ROOT.glob("scripts/*.py"), *ROOT.glob("benchmarks/**/*.py")])


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_repository_ships_recipes_and_scripts():
    assert len(TRAINING_CONFIGS) >= 20 and len(SHELL_SCRIPTS) >= 20 and len(PYTHON_SCRIPTS) >= 10


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=_name)
def test_every_shipped_training_config_loads_and_builds_its_model_config(path, tmp_path):
    config = load_config(path, {"output_dir": str(tmp_path)})
    spec = get_method(config.method)
    _check_model_keys(spec.config_class, config.model)  # a config class would take unknown keys silently
    # The model config `latentlm train` builds from scratch (tokenizer-derived values, method defaults, a warm start's
    # block sizes); its class validates the values.
    spec.config_class(**model_config_kwargs(spec.config_class, load_tokenizer(config), config))


@pytest.mark.parametrize("path", SHELL_SCRIPTS, ids=_name)
def test_every_shell_script_parses(path):
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def _latentlm_imports(path: Path) -> list[tuple[str, str]]:
    """`(module, name)` of every `from latentlm... import name` in a script (`import latentlm.x`: `("latentlm.x", "")`)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "latentlm":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.split(".")[0] == "latentlm"]
    return found


@pytest.mark.parametrize("path", PYTHON_SCRIPTS, ids=_name)
def test_every_python_script_imports_only_names_latentlm_has(path):
    missing = []
    for module_name, name in _latentlm_imports(path):
        module = importlib.import_module(module_name)
        if name and not hasattr(module, name):
            try:  # `from package import submodule`
                importlib.import_module(f"{module_name}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{module_name}.{name}")
    assert not missing, f"{_name(path)} imports names latentlm no longer has: {missing}"
