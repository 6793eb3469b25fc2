"""The parameters each notebook declares, and validation of a ``run --config`` against them.

A notebook's ``parameters`` cell is the single declaration: names and defaults are read from it
(its simple assignments), the type follows the default, and the few parameters with a fixed set
of values list them in :data:`ALLOWED`. A config is checked completely before any notebook runs,
so a misspelt name or a wrong type is an error up front, not a failure in cell 18.
Secret-like names and values are refused without the value ever being echoed or written.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat

from .nsfw import NSFW_DEFINITIONS

#: Parameters with a closed set of values (the rest are checked by type only).
ALLOWED: dict[str, tuple[str, ...]] = {
    "source": ("sample", "existing", "import", "collect"),
    "importer": ("models-jsonl", "civ40k", "civiverse"),
    "endpoint": ("images", "models"),
    "definition": tuple(sorted(NSFW_DEFINITIONS)),
    "se_method": ("quasi", "hac"),
}
#: Smallest sensible value of numeric parameters (a negative window or segment length would fit
#: models the analysis forbids, e.g. segments shorter than ``min_side``).
MINIMUM: dict[str, int | float] = {
    "n_images": 1000, "n_models": 100, "max_items": 1, "rate": 0, "top_n_tags": 1,
    "decomposition_window": 1, "drop_months": 0, "min_side": 2, "candidate_sample_rows": 1,
    "per_level": 1,
}
#: Types of parameters whose default is None (None stays allowed).
NONE_DEFAULT_TYPES: dict[str, tuple[type, ...]] = {
    "out_dir": (str,), "importer": (str,), "path": (str,), "since": (str,), "until": (str,),
    "max_items": (int,), "base_url": (str,), "rate": (int, float), "codebook_path": (str,),
    "private_dir": (str,),
}
#: Parameters naming input files (relative to notebooks/): they must exist before a run starts.
PATH_PARAMETERS = ("codebook_path", "path", "coding_files")
#: Set by the runner itself; a config may not override them.
RUNNER_OWNED = ("data_dir", "out_dir", "seed")
#: Words that make a parameter name secret-like (compared with the name's ``_``-separated words).
#: ("private" is not one: `private_dir` names the folder for unredacted lists; "private_key" is
#: caught by "key").
SECRET_WORDS = frozenset({
    "key", "apikey", "token", "secret", "password", "passwd", "pwd", "passphrase", "credential",
    "credentials", "auth", "authorization", "bearer", "cookie", "session",
})
#: Values that look like credentials whatever their parameter is called.
SECRET_VALUE_PATTERNS = (
    re.compile(r"^hf_[A-Za-z0-9]{20,}$"),  # Hugging Face token
    re.compile(r"^(sk|pk|rk)-[A-Za-z0-9_-]{16,}$"),  # API keys of several services
    re.compile(r"^gh[pousr]_[A-Za-z0-9]{20,}$"),  # GitHub token
    re.compile(r"^AKIA[0-9A-Z]{16}$"),  # AWS access key id
    re.compile(r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"),  # JWT
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"^[0-9a-f]{32,}$"),  # a CivitAI API key is 32 hex characters
    re.compile(r"^(?=.*[0-9])(?=.*[a-z])(?=.*[A-Z])[A-Za-z0-9+/_=-]{32,}$"),  # long random text
)
SECRET_ENV = ("CIVITAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class ConfigError(ValueError):
    """A run configuration is malformed; the message names the parameter and the fix."""


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    comment: str

    def types(self) -> tuple[type, ...]:
        if self.default is None:
            return NONE_DEFAULT_TYPES.get(self.name, (str, int, float, bool, list))
        if isinstance(self.default, bool):
            return (bool,)
        if isinstance(self.default, float):
            return (int, float)
        return (type(self.default),)

    def describe(self) -> str:
        kinds = " or ".join(t.__name__ for t in self.types())
        allowed = f"; one of {', '.join(ALLOWED[self.name])}" if self.name in ALLOWED else ""
        if self.name in MINIMUM:
            allowed += f"; at least {MINIMUM[self.name]}"
        note = f"  # {self.comment}" if self.comment else ""
        return f"{self.name} = {self.default!r} ({kinds}{allowed}){note}"


def declared_parameters(notebook: Path) -> dict[str, Parameter]:
    """The parameters declared in ``notebook``'s cell tagged ``parameters``, in order."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return _parse_cell(cell.source)
    return {}


def _parse_cell(source: str) -> dict[str, Parameter]:
    lines = source.splitlines()
    found: dict[str, Parameter] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            try:
                default = ast.literal_eval(node.value)
            except ValueError:
                continue
            line = lines[node.lineno - 1]
            comment = line.split("#", 1)[1].strip() if "#" in line else ""
            found[node.targets[0].id] = Parameter(node.targets[0].id, default, comment)
    return found


def is_secret_name(name: str) -> bool:
    words = {w for w in re.split(r"[_\-\s.]+|(?<=[a-z])(?=[A-Z])", str(name).lower()) if w}
    return bool(words & SECRET_WORDS) or "apikey" in str(name).lower().replace("_", "")


def is_secret_value(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    text = value.strip()
    if any(os.environ.get(env) and text == os.environ[env] for env in SECRET_ENV):
        return True
    return any(pattern.search(text) for pattern in SECRET_VALUE_PATTERNS)


def _check_value(where: str, param: Parameter, value: Any) -> None:
    types = param.types()
    ok = (value is None and param.default is None) or (
        isinstance(value, types) and not (isinstance(value, bool) and bool not in types))
    if not ok:
        kinds = " or ".join(t.__name__ for t in types)
        raise ConfigError(f"{where}: parameter {param.name!r} must be {kinds} (like "
                          f"{param.default!r}), got {type(value).__name__} {value!r}; fix it "
                          "in the config")
    if param.name in ALLOWED and value is not None and value not in ALLOWED[param.name]:
        raise ConfigError(f"{where}: parameter {param.name!r} is {value!r}; allowed values: "
                          f"{', '.join(ALLOWED[param.name])}")
    low = MINIMUM.get(param.name)
    if low is not None and value is not None and value < low:
        raise ConfigError(f"{where}: parameter {param.name!r} is {value!r}; it must be at least "
                          f"{low}")


def validate_config(data: Any, notebooks: list[Path], source: str = "config"
                    ) -> dict[str, dict[str, Any]]:
    """Check a parsed config against the notebooks' declared parameters; return it as given.

    ``data`` maps ``all`` or a notebook stem to parameters. Unknown notebooks, undeclared or
    runner-owned parameter names, wrong types, values outside :data:`ALLOWED` and anything
    secret-like are refused, naming the parameter (never echoing a secret value).
    """
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{source}: expected a mapping of notebook name (or 'all') to "
                          "parameters, e.g. {03_trend_regression: {drop_months: 3}}")
    declared = {nb.stem: declared_parameters(nb) for nb in notebooks}
    for section, params in data.items():
        for name, value in params.items():
            if is_secret_name(name) or is_secret_value(value):
                raise ConfigError(
                    f"{source}: parameter {name!r} in {section!r} looks like a secret (value not "
                    "shown); secrets come only from the environment (CIVITAI_API_KEY, HF_TOKEN), "
                    "never from parameters: remove it from the config")
    for section, params in data.items():
        if section == "all":
            targets = list(declared)
        elif section in declared:
            targets = [section]
        else:
            raise ConfigError(f"{source}: unknown notebook {section!r}; use 'all' or one of "
                              f"{', '.join(declared)}")
        for name, value in params.items():
            where = f"{source} [{section}]"
            if name in RUNNER_OWNED:
                raise ConfigError(f"{where}: {name!r} is set by the runner; use `civitai-study "
                                  f"run --{name.replace('_dir', '')}` instead")
            having = [t for t in targets if name in declared[t]]
            if not having:
                raise ConfigError(f"{where}: no notebook there declares parameter {name!r}; see "
                                  "`civitai-study run --list-parameters`")
            for target in having:
                _check_value(where, declared[target][name], value)
            if name in PATH_PARAMETERS and value is not None:
                _check_paths(where, name, value, notebooks)
    return data


def _check_paths(where: str, name: str, value: Any, notebooks: list[Path]) -> None:
    """Input files named in a config exist (relative paths are taken from notebooks/)."""
    base = notebooks[0].parent if notebooks else Path.cwd()
    for item in value if isinstance(value, list) else [value]:
        text = str(item)
        if text.startswith("hf:"):
            continue
        path = Path(text) if Path(text).is_absolute() else base / text
        if not path.exists():
            raise ConfigError(f"{where}: {name} {text!r} does not exist (relative paths are "
                              "read from notebooks/); fix the path in the config")


def parameters_text(notebooks: list[Path]) -> str:
    """Every notebook's declared parameters, for ``run --list-parameters``."""
    lines = []
    for nb in notebooks:
        lines.append(f"{nb.stem}:")
        for param in declared_parameters(nb).values():
            owned = "  (set by the runner)" if param.name in RUNNER_OWNED else ""
            lines.append(f"  {param.describe()}{owned}")
    lines.append("Config file: YAML {all: {name: value}, <notebook stem>: {name: value}}, "
                 "passed with --config")
    return "\n".join(lines)
