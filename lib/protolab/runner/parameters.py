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

A parameter whose valid values are a range of its type declares the range in brackets at the start of its
help, before the words::

    epochs: int = 10  # [≥ 1] passes over the training set
    erasing: float = 0.5  # [≥ 0, ≤ 1] probability of random erasing
    clip_r: float | None = 2.3  # [> 0] clip feature norms to this radius (None: no clipping)
    shots: list[int] = [1, 5]  # [non-empty, ≥ 1] support images per class
    train_way: list[int] = [30, 20]  # [len = shots, ≥ 2] classes per training episode, one per shot
    episode_unseen: int = 5  # [≥ 0, < n_way] of the n_way classes, held out per episode
    device: str = "auto"  # [device] cpu, cuda or auto (CUDA when present)

The marker holds clauses separated by commas, all of which a value must satisfy (:class:`Range`):

* ``≥ X``, ``> X``, ``≤ X``, ``< X``: a bound on an int or float, on every item of a list of them; ``X`` is
  a number, or the name of another int or float parameter (a bound that is None then does not apply);
* ``non-empty``: a list holds at least one item;
* ``len = X``: a list holds ``X`` items (a whole number), or as many as the list parameter named ``X``;
* ``device``: a torch device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``;
* ``zsl dataset``: a zero-shot dataset :func:`protolab.data.load_zsl` reads (``glyph-zsl``, or a folder of
  ``data_root`` in the xlsa17 layout), for a free ``str``; the runner checks the name and the files before any
  kernel starts (:func:`protolab.data.check_zsl_dataset`, from :func:`protolab.runner.execute.dataset_problems`),
  the loader in the kernel.

None, where the type allows it, is within every range; a parameter without a marker takes any value of its
type. A help starting with ``[`` is a marker, and a malformed one is refused. Every notebook declares
:data:`REQUIRED_PARAMETERS` with their ranges (``seed`` ≥ 0, ``device``). The defaults, every profile,
the runner's ``-p`` overrides (:func:`protolab.runner.execute.plan`, before any kernel starts) and the values
a notebook receives (:func:`protolab.figures.start`, also under JupyterLab and plain papermill) are all
checked by :func:`check_values`, which reports every ill-typed or out-of-range value at once; ``protolab
list`` shows each range before the help.

Profiles (``smoke``, ``default``, ``full``) live in ``notebooks/profiles.yaml`` as parameter overrides per
notebook; a notebook's own defaults are its ``default`` profile. A notebook may add variants of ``full``
named ``full-<something>`` there (e.g. one per official paper config), and a ``quick`` profile (a first look,
between ``smoke`` and ``default``; its outputs are indicative and never published into ``figures/``); they exist
for the notebooks that define them only.

A notebook that reads other notebooks' outputs names them under ``depends_on`` in the same file::

    delta_hyperbolicity:
      depends_on: [fewshot_tables, poincare_uncertainty, reid_embeddings]

It is declared there, beside the notebook's profiles, rather than as a parameter: which notebooks it reads is a
fact about its code, not a setting of one run (no ``-p`` changes it, and it is not recorded as a parameter in the
provenance). The runner runs a notebook's dependencies first when they are in the same run
(:func:`run_order`), and the notebook reads their outputs with :func:`protolab.figures.upstream_table`. A notebook
whose cached model cells are another's (the IPN notebooks share one cache) names it too, so that it runs after
it and reads those cells instead of training them a second time beside it. An unknown name or a cycle is refused
when the notebooks are discovered, before any kernel starts.

A notebook whose training the runner's pinned CPU code path slows too much (:mod:`protolab.runner.kernel_paths`)
declares ``kernels: native`` there: its kernel runs on the CPU's own path, so its numbers are exact per CPU model
rather than across x86-64 machines (its per-model cache keys record the path). A notebook whose models train one
thread each in worker processes may declare ``cores: all``: it gets every core of the run (the executor's threads
for one notebook) rather than its share among ``--jobs``, so that the longest notebook of a run keeps them all
busy beside the others and after they end::

    fewshot_tables:
      kernels: native
      cores: all
"""

from __future__ import annotations

import ast
import io
import json
import operator
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from protolab.runner.project import ProjectError, notebooks_dir

PROFILES = ("smoke", "default", "full")
EXTRA_PROFILE_PREFIX = "full-"  # profiles.yaml may define more profiles per notebook, named full-<something>
QUICK_PROFILE = "quick"  # profiles.yaml may define it per notebook: a first look, indicative, never in figures/
DEPENDS_ON = "depends_on"  # profiles.yaml's key, per notebook, naming the notebooks whose outputs it reads
KERNELS = "kernels"  # profiles.yaml's key, per notebook: "native" runs its kernel on the CPU's own code path
KERNEL_CHOICES = ("pinned", "native")
CORES = "cores"  # profiles.yaml's key, per notebook: "all" gives it every core even beside other notebooks
CORE_CHOICES = ("shared", "all")
_SCALARS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}
_BOUNDS = {"≥": operator.ge, ">": operator.gt, "≤": operator.le, "<": operator.lt}
_CLAUSE = re.compile(r"(≥|>|≤|<|len\s*=)\s*([^\s=<>≥≤]\S*)")
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


class ParameterError(ValueError):
    """Parameters unknown, ill-typed, out of their declared range or malformed; each problem names its parameter.

    ``problems`` holds them one by one; the message is one line each."""

    def __init__(self, *problems: str):
        super().__init__("\n".join(problems))
        self.problems = problems


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


@dataclass(frozen=True)
class Range:
    """A parameter's declared valid range: the clauses of the ``[…]`` marker opening its help (module docstring).

    Each clause is ``(relation, operand)``: ``("≥", 1)``, ``("<", "n_way")``, ``("len =", "shots")``,
    ``("non-empty", None)``, ``("device", None)`` or ``("zsl dataset", None)`` (checked by the runner's dataset
    check, not by :meth:`problems`: it needs the data layer); an operand that is a str names another parameter. No
    clauses: any value of the parameter's type.
    """

    clauses: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def from_help(cls, text: str, kind: ParamType) -> tuple["Range", str]:
        """The range declared at the start of the help ``text`` of a parameter of type ``kind``, and the rest of
        the help; ``ValueError`` for a malformed marker or a clause that does not apply to ``kind``."""
        if not text.startswith("["):
            return cls(), text
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unclosed range marker in {text!r}: write [clause, ...] at the start of the help")
        parts = [part.strip() for part in text[1:end].split(",")]
        if parts == [""]:
            raise ValueError("empty range marker []: leave it out when any value of the type is valid")
        return cls(tuple(cls._clause(part, kind) for part in parts)), text[end + 1:].strip()

    @staticmethod
    def _clause(text: str, kind: ParamType) -> tuple[str, Any]:
        if text in ("non-empty", "device", "zsl dataset"):
            relation, operand = text, None
        else:
            match = _CLAUSE.fullmatch(text)
            if not match:
                raise ValueError(f"unknown range clause {text!r}; write ≥ X, > X, ≤ X, < X, non-empty, len = X, "
                                 "device or zsl dataset")
            relation, operand = ("len =" if match[1].startswith("len") else match[1]), match[2]
            if not operand.isidentifier():
                try:
                    operand = int(operand) if relation == "len =" else float(operand)
                except ValueError:
                    kind_of = "a whole number" if relation == "len =" else "a number"
                    raise ValueError(f"range clause {text!r}: X must be {kind_of} or a parameter's name") from None
                operand = int(operand) if isinstance(operand, float) and operand.is_integer() else operand
        if relation in _BOUNDS and (kind.scalar not in ("int", "float") or kind.choices):
            raise ValueError(f"range clause {text!r} applies to an int or float (or a list of them), not {kind}")
        if relation in ("non-empty", "len =") and not kind.is_list:
            raise ValueError(f"range clause {text!r} applies to a list, not {kind}")
        if relation in ("device", "zsl dataset") and (kind.scalar != "str" or kind.is_list or kind.choices):
            raise ValueError(f"range clause {relation!r} applies to a str, not {kind}")
        return relation, operand

    def check_references(self, name: str, parameters: Mapping[str, "Parameter"]) -> None:
        """``ValueError`` unless every parameter a clause names exists, is not ``name``, and is a list (for
        ``len =``) or an int or float (for a bound)."""
        for relation, other in self.clauses:
            if not isinstance(other, str):
                continue
            clause = f"{relation} {other}"
            if other == name:
                raise ValueError(f"range clause {clause!r} compares {name!r} with itself")
            if other not in parameters:
                raise ValueError(f"range clause {clause!r}: no parameter {other!r}")
            kind = parameters[other].type
            if relation == "len =" and not kind.is_list:
                raise ValueError(f"range clause {clause!r}: {other!r} is not a list parameter")
            if relation in _BOUNDS and (kind.is_list or kind.scalar not in ("int", "float")):
                raise ValueError(f"range clause {clause!r}: {other!r} is not an int or float parameter")

    def problems(self, name: str, value: Any, others: Mapping[str, Any]) -> list[str]:
        """How ``value`` of parameter ``name`` breaks this range, one line each, naming ``name``; none for None.

        A clause naming another parameter applies only when ``others`` holds that parameter's value, not None.
        """
        if value is None:
            return []
        problems = []
        for relation, operand in self.clauses:
            if isinstance(operand, str):
                if others.get(operand) is None:
                    continue
                bound = others[operand]
            else:
                bound = operand
            if relation in _BOUNDS:
                shown = f"{relation} {operand} ({bound!r})" if isinstance(operand, str) else f"{relation} {operand}"
                if isinstance(value, list) and not all(_BOUNDS[relation](item, bound) for item in value):
                    problems.append(f"parameter {name!r}: every item must be {shown}, got {value!r}")
                elif not isinstance(value, list) and not _BOUNDS[relation](value, bound):
                    problems.append(f"parameter {name!r} must be {shown}, got {value!r}")
            elif relation == "non-empty" and not value:
                problems.append(f"parameter {name!r} must be non-empty, got {value!r}")
            elif relation == "len =":
                length = len(bound) if isinstance(operand, str) else bound
                if len(value) != length:
                    wanted = f"as many items as {operand} ({length})" if isinstance(operand, str) else f"{length} items"
                    problems.append(f"parameter {name!r} must have {wanted}, got {len(value)}: {value!r}")
            elif relation == "device" and not _DEVICE.fullmatch(value):
                problems.append(f"parameter {name!r} must be auto, cpu, cuda or cuda:N, got {value!r}")
        return problems

    def __str__(self) -> str:
        """The marker as the listing shows it, e.g. ``[len = shots, ≥ 2]``; empty without clauses."""
        clauses = [relation if operand is None else f"{relation} {operand}" for relation, operand in self.clauses]
        return f"[{', '.join(clauses)}]" if clauses else ""


@dataclass(frozen=True)
class Parameter:
    """One line of a parameters cell: its help is the comment without the range marker."""

    name: str
    type: ParamType
    default: Any
    help: str
    range: Range = Range()


def check_values(parameters: Mapping[str, Parameter], values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` of ``parameters`` (by name) checked against their declared types (an int is converted for a
    float) and ranges; one :class:`ParameterError` lists every problem.

    A range clause naming another parameter is checked only when that parameter's own value is fine, so that
    a single bad value is blamed once (``shots=[]``, not also ``train_way``'s ``len = shots``).
    """
    checked, problems = {}, []
    for name, value in values.items():
        if name not in parameters:  # e.g. a profiles.yaml entry naming a parameter the notebook does not declare
            problems.append(f"unknown parameter {name!r}; known: {', '.join(parameters)}")
            continue
        try:
            checked[name] = parameters[name].type.check(name, value)
        except ParameterError as error:
            problems += error.problems
    alone = {name: parameters[name].range.problems(name, value, {}) for name, value in checked.items()}
    fine = {name: value for name, value in checked.items() if not alone[name]}
    for name, value in checked.items():
        problems += alone[name] or parameters[name].range.problems(name, value, fine)
    if problems:
        raise ParameterError(*problems)
    return checked


@dataclass
class Experiment:
    """A notebook registered with the runner."""

    name: str
    path: Path
    title: str
    parameters: dict[str, Parameter]
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()  # notebooks whose outputs it reads (profiles.yaml's depends_on)
    kernels: str = "pinned"  # CPU code path of its kernel (profiles.yaml's kernels; protolab.runner.kernel_paths)
    cores: str = "shared"  # its threads: the run's cores shared among --jobs, or all of them (profiles.yaml's cores)

    @property
    def profile_names(self) -> tuple[str, ...]:
        """The profiles this notebook accepts: :data:`PROFILES`, then its own ``quick`` and ``full-…`` ones from
        profiles.yaml."""
        return PROFILES + tuple(name for name in self.profiles if name not in PROFILES)

    def resolve(self, profile: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Parameter values for ``profile`` plus ``overrides`` (typed values or command-line strings).

        Raises one :class:`ParameterError` naming every unknown parameter, ill-typed value and value outside its
        declared range (:func:`check_values`).
        """
        if profile not in self.profile_names:
            raise ParameterError(f"unknown profile {profile!r}; choose one of {', '.join(self.profile_names)}")
        values = {name: parameter.default for name, parameter in self.parameters.items()}
        values.update(self.profiles.get(profile, {}))
        values["profile"] = profile
        problems = []
        for name, value in (overrides or {}).items():
            if name not in self.parameters:
                problems.append(f"{self.name}: unknown parameter {name!r}; known: {', '.join(self.parameters)}")
                continue
            try:
                values[name] = self.parameters[name].type.parse_text(name, value) if isinstance(value, str) else value
            except ParameterError as error:
                problems += error.problems
                del values[name]  # nothing is compared with a value that could not be read
        try:
            checked = check_values(self.parameters, values)
        except ParameterError as error:
            problems += error.problems
        if problems:
            raise ParameterError(*problems)
        return checked


def parse_parameters_cell(source: str, where: str = "parameters cell") -> dict[str, Parameter]:
    """Parse ``name: type = literal  # [range] help`` statements; anything else, a malformed range or a default
    outside its range is a :class:`ParameterError`.

    A statement may span several lines (a long type or value); its help is the comment on its last line,
    continued on the comment lines right after it that are indented (``    # more help``), so that every line
    stays short. The range marker (module docstring) opens the help, on its first line."""
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
            declared, help_text = Range.from_help(help_of(node), kind)
        except ValueError as error:
            raise ParameterError(f"{where}, parameter {name!r}: {error}") from error
        parameters[name] = Parameter(name, kind, kind.check(name, default), help_text, declared)
    for name, parameter in parameters.items():
        try:
            parameter.range.check_references(name, parameters)
        except ValueError as error:
            raise ParameterError(f"{where}, parameter {name!r}: {error}") from error
    try:
        check_values(parameters, {name: parameter.default for name, parameter in parameters.items()})
    except ParameterError as error:
        raise ParameterError(*(f"{where}: {problem}" for problem in error.problems)) from error
    return parameters


# What every notebook declares, with these ranges (tests/test_parameter_ranges.py checks that they match).
REQUIRED_PARAMETERS: dict[str, Parameter] = parse_parameters_cell('''
dataset: str = ""  # which data
data_root: str = ""  # where real datasets live
profile: str = "default"  # smoke | default | full
seed: int = 0  # [≥ 0] random seed
device: str = "auto"  # [device] cpu, cuda or auto
out_dir: str = "figures"  # where outputs go
''', "REQUIRED_PARAMETERS")


def notebook_cells(path: Path) -> list[dict[str, Any]]:
    """The cells of the nbformat-4 notebook at ``path`` as dicts, each ``source`` one string. Read as JSON,
    without nbformat's schema validation (whose import costs every kernel a second: ``figures`` reads the
    parameters cell of the notebook it runs in)."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        if notebook["nbformat"] != 4:
            raise ValueError(f"nbformat {notebook['nbformat']}, not 4")
        return [{**cell, "source": cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])}
                for cell in notebook["cells"]]
    except (ValueError, KeyError, TypeError) as error:
        raise ParameterError(f"{path.name}: not a readable nbformat-4 notebook ({error})") from None


def load_experiment(path: Path, profiles: Mapping[str, Mapping[str, Any]] | None = None,
                    depends_on: Any = (), kernels: Any = "pinned", cores: Any = "shared") -> Experiment:
    """Read one notebook's title (first Markdown heading) and parameters cell; ``profiles``, ``depends_on``,
    ``kernels`` and ``cores`` are its entries in profiles.yaml."""
    cells = notebook_cells(path)
    code_cells = [cell for cell in cells if cell["cell_type"] == "code"]
    if not code_cells or "parameters" not in code_cells[0].get("metadata", {}).get("tags", []):
        raise ParameterError(f"{path.name}: the first code cell must be tagged 'parameters'")
    parameters = parse_parameters_cell(code_cells[0]["source"], f"{path.name} parameters cell")
    title = next(
        (line.lstrip("# ").strip() for cell in cells if cell["cell_type"] == "markdown"
         for line in cell["source"].splitlines() if line.startswith("# ")),
        path.stem,
    )
    if not (isinstance(depends_on, list | tuple) and all(isinstance(name, str) for name in depends_on)):
        raise ParameterError(f"profiles.yaml, {path.stem}: {DEPENDS_ON} must be a list of notebook names, "
                             f"got {depends_on!r}")
    for key, value, choices in ((KERNELS, kernels, KERNEL_CHOICES), (CORES, cores, CORE_CHOICES)):
        if value not in choices:
            raise ParameterError(f"profiles.yaml, {path.stem}: {key} must be one of {', '.join(choices)}, "
                                 f"got {value!r}")
    experiment = Experiment(path.stem, path, title, parameters, depends_on=tuple(depends_on), kernels=kernels,
                            cores=cores)
    for profile, overrides in (profiles or {}).items():
        if profile not in (*PROFILES, QUICK_PROFILE) and not (isinstance(profile, str)
                                                              and profile.startswith(EXTRA_PROFILE_PREFIX)):
            raise ParameterError(f"profiles.yaml, {path.stem}: unknown profile {profile!r}; use "
                                 f"{', '.join((*PROFILES, QUICK_PROFILE))}, a name starting with "
                                 f"{EXTRA_PROFILE_PREFIX!r}, {DEPENDS_ON}, {KERNELS} or {CORES}")
        experiment.profiles[profile] = dict(overrides or {})
        try:
            experiment.resolve(profile)
        except ParameterError as error:
            raise ParameterError(*(f"profiles.yaml, {path.stem}, {profile}: {problem}"
                                   for problem in error.problems)) from error
    return experiment


def discover(directory: Path | None = None) -> dict[str, Experiment]:
    """Every ``*.ipynb`` in ``directory`` (default :func:`notebooks_dir`), by name, with its profiles."""
    directory = Path(directory or notebooks_dir())
    if not directory.is_dir():
        raise ProjectError(f"notebooks directory {directory} does not exist")
    profiles_file = directory / "profiles.yaml"
    entries = (yaml.safe_load(profiles_file.read_text()) if profiles_file.exists() else None) or {}
    experiments = {}
    for path in sorted(directory.glob("*.ipynb")):
        profiles = dict(entries.get(path.stem) or {})
        experiments[path.stem] = load_experiment(path, profiles, profiles.pop(DEPENDS_ON, ()),
                                                 profiles.pop(KERNELS, "pinned"), profiles.pop(CORES, "shared"))
    unknown = sorted(set(entries) - set(experiments))
    if unknown:
        raise ParameterError(f"profiles.yaml names notebooks that do not exist: {', '.join(unknown)}")
    unknown = [f"{name} depends on {other!r}" for name, experiment in experiments.items()
               for other in experiment.depends_on if other not in experiments or other == name]
    if unknown:
        raise ParameterError(f"profiles.yaml, {DEPENDS_ON}: no such other notebook: {'; '.join(unknown)}")
    run_order(experiments)
    return experiments


def run_order(experiments: Mapping[str, Experiment], names: Sequence[str] | None = None) -> list[str]:
    """``names`` (default: every notebook), each after the ones among them it depends on (``depends_on``), in their
    given order otherwise (a stable topological order); a dependency that is not among ``names`` does not count
    (the notebook then reads what that dependency last published). A cycle is a :class:`ParameterError` naming
    it."""
    left = list(dict.fromkeys(experiments if names is None else names))
    selected, ordered = set(left), []
    while left:
        ready = next((name for name in left
                      if all(other in ordered for other in experiments[name].depends_on if other in selected)), None)
        if ready is None:
            cycle = [left[0]]
            while (step := next(other for other in experiments[cycle[-1]].depends_on if other in left)) not in cycle:
                cycle.append(step)
            cycle = cycle[cycle.index(step):] + [step]
            raise ParameterError(f"profiles.yaml, {DEPENDS_ON}: the notebooks depend on each other in a cycle: "
                                 + " → ".join(cycle))
        ordered.append(ready)
        left.remove(ready)
    return ordered
