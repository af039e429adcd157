"""The experiment notebooks: discovery, their typed ``parameters`` cells, and their profiles.

A parameters cell holds plain typed literals, one per line::

    epochs: int = 10  # passes over the training set
    shots: list[int] = [1, 5]  # support images per class

Supported types are ``int``, ``float``, ``bool``, ``str``, ``list[...]`` of those, and any of them
``| None``. A parameter with a fixed set of values declares them, and any other value is refused (the cell
then starts with ``from typing import Literal``, the one other statement it may hold)::

    from typing import Literal
    geometry: Literal["euclidean", "hyperbolic", "both"] = "both"  # which models to train
    ood_datasets: list[Literal["glyphs", "fashion-mnist", "omniglot"]] = ["glyphs"]  # one row each

Profiles (``smoke``, ``default``, ``full``) live in ``notebooks/profiles.yaml`` as parameter overrides per
notebook; a notebook's own defaults are its ``default`` profile. A notebook may add variants of ``full``
named ``full-<something>`` there (e.g. one per official paper config); they exist for that notebook only.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import nbformat
import yaml

from protolab.runner.project import ProjectError, notebooks_dir

PROFILES = ("smoke", "default", "full")
EXTRA_PROFILE_PREFIX = "full-"  # profiles.yaml may define more profiles per notebook, named full-<something>
_SCALARS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


class ParameterError(ValueError):
    """A parameter is unknown, ill-typed or malformed; the message names it."""


@dataclass(frozen=True)
class ParamType:
    """A parameter's declared type: a scalar, optionally a list of it, optionally ``| None``."""

    scalar: str
    is_list: bool = False
    optional: bool = False
    choices: tuple[Any, ...] = ()  # the allowed values (of each item, for a list) when declared ``Literal[...]``

    @classmethod
    def parse_annotation(cls, text: str) -> "ParamType":
        """``int``, ``list[str] | None``, ``Literal["a", "b"]``, ``list[Literal[1, 2]]``…"""
        unsupported = ValueError(f"unsupported annotation {text!r}; use int, float, bool, str, "
                                 "Literal[...] or list[...] of them, optionally | None")
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError as error:
            raise unsupported from error
        parts: list[ast.expr] = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            parts.append(node.right)
            node = node.left
        parts = [node, *reversed(parts)]
        optional = any(isinstance(part, ast.Constant) and part.value is None for part in parts)
        parts = [part for part in parts if not (isinstance(part, ast.Constant) and part.value is None)]
        if len(parts) != 1:
            raise unsupported
        core, is_list = parts[0], False
        if isinstance(core, ast.Subscript) and isinstance(core.value, ast.Name) and core.value.id == "list":
            core, is_list = core.slice, True
        if isinstance(core, ast.Name) and core.id in _SCALARS:
            return cls(core.id, is_list, optional)
        if isinstance(core, ast.Subscript) and isinstance(core.value, ast.Name) and core.value.id == "Literal":
            items = core.slice.elts if isinstance(core.slice, ast.Tuple) else [core.slice]
            try:
                choices = tuple(ast.literal_eval(item) for item in items)
            except ValueError as error:
                raise unsupported from error
            kinds = {type(choice).__name__ for choice in choices}
            if len(kinds) != 1 or not kinds <= set(_SCALARS):
                raise ValueError(f"unsupported annotation {text!r}: Literal values must all be int, float, bool or str")
            return cls(kinds.pop(), is_list, optional, choices)
        raise unsupported

    def __str__(self) -> str:
        scalar = f"Literal[{', '.join(map(repr, self.choices))}]" if self.choices else self.scalar
        core = f"list[{scalar}]" if self.is_list else scalar
        return f"{core} | None" if self.optional else core

    def describe(self) -> str:
        """Short form for listings: ``str`` or ``str`` with ``choices: a, b``."""
        core = f"list[{self.scalar}]" if self.is_list else self.scalar
        return f"{core} | None" if self.optional else core

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` if it has this type (an int is accepted, and converted, for a float)."""
        if value is None and self.optional:
            return None
        if self.is_list:
            if not isinstance(value, (list, tuple)):
                raise ParameterError(f"parameter {name!r} expects {self}, got {value!r}")
            return [self._check_scalar(name, item) for item in value]
        return self._check_scalar(name, value)

    def _check_scalar(self, name: str, value: Any) -> Any:
        expected = _SCALARS[self.scalar]
        if self.scalar == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and self.scalar != "bool":
            raise ParameterError(f"parameter {name!r} expects {self}, got {value!r}")
        if not isinstance(value, expected):
            raise ParameterError(f"parameter {name!r} expects {self}, got {value!r}")
        if self.choices and value not in self.choices:
            raise ParameterError(f"parameter {name!r}: {value!r} is not one of the allowed values "
                                 f"{', '.join(map(repr, self.choices))}")
        return value

    def parse_text(self, name: str, text: str) -> Any:
        """Convert a command-line string (``-p name=text``) to this type."""
        if self.optional and text.strip().lower() in {"none", "null"}:
            return None
        if self.is_list:
            stripped = text.strip()
            if stripped.startswith("["):
                try:
                    items = yaml.safe_load(stripped)
                except yaml.YAMLError as error:
                    raise ParameterError(f"parameter {name!r} expects {self}, got {text!r}") from error
                if not isinstance(items, list):
                    raise ParameterError(f"parameter {name!r} expects {self}, got {text!r}")
                return self.check(name, items if self.scalar != "str" else [str(item) for item in items])
            return [self._parse_scalar(name, item.strip()) for item in stripped.split(",") if item.strip()]
        return self._parse_scalar(name, text)

    def _parse_scalar(self, name: str, text: str) -> Any:
        return self._check_scalar(name, self._convert_scalar(name, text))

    def _convert_scalar(self, name: str, text: str) -> Any:
        try:
            if self.scalar == "int":
                return int(text)
            if self.scalar == "float":
                return float(text)
        except ValueError as error:
            raise ParameterError(f"parameter {name!r} expects {self}, got {text!r}") from error
        if self.scalar == "bool":
            lowered = text.strip().lower()
            if lowered in _TRUE | _FALSE:
                return lowered in _TRUE
            raise ParameterError(f"parameter {name!r} expects bool (true/false), got {text!r}")
        return text


REQUIRED_PARAMETERS: dict[str, ParamType] = {
    "dataset": ParamType("str"), "data_root": ParamType("str"), "profile": ParamType("str"),
    "seed": ParamType("int"), "device": ParamType("str"), "out_dir": ParamType("str"),
}


@dataclass(frozen=True)
class Parameter:
    """One line of a parameters cell."""

    name: str
    type: ParamType
    default: Any
    help: str


@dataclass
class Experiment:
    """A notebook registered with the runner."""

    name: str
    path: Path
    title: str
    parameters: dict[str, Parameter]
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def profile_names(self) -> tuple[str, ...]:
        """The profiles this notebook accepts: :data:`PROFILES`, then its own ``full-…`` ones from profiles.yaml."""
        return PROFILES + tuple(name for name in self.profiles if name not in PROFILES)

    def resolve(self, profile: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Parameter values for ``profile`` plus ``overrides`` (typed values or command-line strings).

        Raises :class:`ParameterError` naming any unknown parameter or ill-typed value.
        """
        if profile not in self.profile_names:
            raise ParameterError(f"unknown profile {profile!r}; choose one of {', '.join(self.profile_names)}")
        values = {name: parameter.default for name, parameter in self.parameters.items()}
        values.update(self.profiles.get(profile, {}))
        values["profile"] = profile
        for name, value in (overrides or {}).items():
            if name not in self.parameters:
                raise ParameterError(f"{self.name}: unknown parameter {name!r}; known: {', '.join(self.parameters)}")
            kind = self.parameters[name].type
            values[name] = kind.parse_text(name, value) if isinstance(value, str) else value
        return {name: self.parameters[name].type.check(name, value) for name, value in values.items()}


def parse_parameters_cell(source: str, where: str = "parameters cell") -> dict[str, Parameter]:
    """Parse ``name: type = literal  # help`` statements; anything else is a :class:`ParameterError`.

    A statement may span several lines (a long type or value); its help is the comment on its last line,
    continued on the comment lines right after it that are indented (``    # more help``), so that every line
    stays short."""
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ParameterError(f"{where}: not valid Python: {error}") from error
    comments = {
        token.start[0]: token.string.lstrip("#").strip()
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    }
    lines = source.splitlines()

    def help_of(node: ast.AnnAssign) -> str:
        parts, line = [comments.get(node.end_lineno, "")], node.end_lineno
        while line < len(lines) and lines[line][:1].isspace() and lines[line].lstrip().startswith("#"):
            line += 1
            parts.append(comments[line])
        return " ".join(part for part in parts if part)
    parameters: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "typing" and [alias.name for alias in node.names] == [
                "Literal"] and node.names[0].asname is None:
            continue  # `from typing import Literal`: what choice-valued parameters need to execute
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None):
            raise ParameterError(f"{where}, line {node.lineno}: write each parameter as `name: type = literal`")
        name = node.target.id
        try:
            kind = ParamType.parse_annotation(ast.unparse(node.annotation))
            default = ast.literal_eval(node.value)
        except ValueError as error:
            raise ParameterError(f"{where}, parameter {name!r}: {error}") from error
        parameters[name] = Parameter(name, kind, kind.check(name, default), help_of(node))
    return parameters


def load_experiment(path: Path, profiles: Mapping[str, Mapping[str, Any]] | None = None) -> Experiment:
    """Read one notebook's title (first Markdown heading) and parameters cell."""
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if not code_cells or "parameters" not in code_cells[0].metadata.get("tags", []):
        raise ParameterError(f"{path.name}: the first code cell must be tagged 'parameters'")
    parameters = parse_parameters_cell(code_cells[0].source, f"{path.name} parameters cell")
    title = next(
        (line.lstrip("# ").strip() for cell in notebook.cells if cell.cell_type == "markdown"
         for line in cell.source.splitlines() if line.startswith("# ")),
        path.stem,
    )
    experiment = Experiment(path.stem, path, title, parameters)
    for profile, overrides in (profiles or {}).items():
        if profile not in PROFILES and not (isinstance(profile, str) and profile.startswith(EXTRA_PROFILE_PREFIX)):
            raise ParameterError(f"profiles.yaml, {path.stem}: unknown profile {profile!r}; use "
                                 f"{', '.join(PROFILES)} or a name starting with {EXTRA_PROFILE_PREFIX!r}")
        experiment.profiles[profile] = dict(overrides or {})
        experiment.resolve(profile)
    return experiment


def discover(directory: Path | None = None) -> dict[str, Experiment]:
    """Every ``*.ipynb`` in ``directory`` (default :func:`notebooks_dir`), by name, with its profiles."""
    directory = Path(directory or notebooks_dir())
    if not directory.is_dir():
        raise ProjectError(f"notebooks directory {directory} does not exist")
    profiles_file = directory / "profiles.yaml"
    all_profiles = yaml.safe_load(profiles_file.read_text()) if profiles_file.exists() else {}
    experiments = {
        path.stem: load_experiment(path, (all_profiles or {}).get(path.stem))
        for path in sorted(directory.glob("*.ipynb"))
    }
    unknown = sorted(set(all_profiles or {}) - set(experiments))
    if unknown:
        raise ParameterError(f"profiles.yaml names notebooks that do not exist: {', '.join(unknown)}")
    return experiments
