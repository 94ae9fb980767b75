"""Parameter profiles: load ``params/<profile>.yaml``, validate against a schema, merge overrides.

A profile file holds a ``shared:`` mapping (keys every notebook sees) and one mapping per notebook section
(``rdcnn:``, ``latent_hash:``, ...). Each section's schema lives in ``cbir.schemas.<section>`` as ``SCHEMA``,
a dict from key to a spec object (:class:`Int`, :class:`Float`, :class:`Str`, :class:`Bool`,
:class:`Choice`, :class:`ListOf`, :class:`Optional`, :class:`Dict`). Unknown keys and wrong types raise
:class:`ParamsError` naming the key, the allowed values and the file to fix.

Examples
--------
>>> P = load("smoke", "quickstart", {"n_per_class": 5})   # doctest: +SKIP
>>> P.seed, P.n_per_class, P.figures_dir                    # doctest: +SKIP
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

import yaml

PROFILES = ("smoke", "medium", "paper", "paper_limit")  # paper_limit: the capped test of paper


class ParamsError(ValueError):
    """A parameter file or override is invalid; the message names the key and the fix."""


# --------------------------------------------------------------------------------------------- specs
class Spec:
    """Base class of a parameter type; ``check`` returns the (possibly converted) value or raises."""

    def check(self, key: str, value: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fail(self, key: str, value: Any) -> None:
        raise ParamsError(f"{key}={value!r} ({type(value).__name__}) is invalid: expected {self.describe()}")


@dataclass(frozen=True)
class Int(Spec):
    min: int | None = None
    max: int | None = None

    def check(self, key, value):
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(key, value)
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            self._fail(key, value)
        return value

    def describe(self):
        lo = "-inf" if self.min is None else self.min
        hi = "inf" if self.max is None else self.max
        return f"an integer in [{lo}, {hi}]"


@dataclass(frozen=True)
class Float(Spec):
    min: float | None = None
    max: float | None = None

    def check(self, key, value):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self._fail(key, value)
        value = float(value)
        if (self.min is not None and value < self.min) or (self.max is not None and value > self.max):
            self._fail(key, value)
        return value

    def describe(self):
        lo = "-inf" if self.min is None else self.min
        hi = "inf" if self.max is None else self.max
        return f"a number in [{lo}, {hi}]"


@dataclass(frozen=True)
class Str(Spec):
    def check(self, key, value):
        if not isinstance(value, str):
            self._fail(key, value)
        return value

    def describe(self):
        return "a string"


@dataclass(frozen=True)
class Bool(Spec):
    def check(self, key, value):
        if not isinstance(value, bool):
            self._fail(key, value)
        return value

    def describe(self):
        return "true or false"


class Choice(Spec):
    def __init__(self, *choices: Any):
        self.choices = choices

    def check(self, key, value):
        if value not in self.choices:
            self._fail(key, value)
        return value

    def describe(self):
        return "one of " + ", ".join(repr(c) for c in self.choices)


class ListOf(Spec):
    def __init__(self, item: Spec, min_len: int = 0):
        self.item, self.min_len = item, min_len

    def check(self, key, value):
        if not isinstance(value, (list, tuple)) or len(value) < self.min_len:
            self._fail(key, value)
        return [self.item.check(f"{key}[{i}]", v) for i, v in enumerate(value)]

    def describe(self):
        return f"a list (length >= {self.min_len}) of {self.item.describe()}"


class Optional(Spec):
    def __init__(self, inner: Spec):
        self.inner = inner

    def check(self, key, value):
        return None if value is None else self.inner.check(key, value)

    def describe(self):
        return f"null or {self.inner.describe()}"


class Dict(Spec):
    """A free-form mapping (only its type is checked)."""

    def check(self, key, value):
        if not isinstance(value, dict):
            self._fail(key, value)
        return value

    def describe(self):
        return "a mapping"


class Scheduler(Spec):
    """``shared.scheduler``: null (local), a Dask scheduler address or a dask-jobqueue kind
    (:func:`cbir.sweep.check_scheduler`)."""

    def check(self, key, value):
        from cbir.sweep import check_scheduler

        try:
            check_scheduler(value)
        except ValueError as err:
            raise ParamsError(str(err)) from None
        return value

    def describe(self):
        return "null, 'tcp://host:port', 'slurm' or 'pbs'"


SHARED_SCHEMA: dict[str, Spec] = {
    "seed": Int(min=0),
    "threads": Int(min=1, max=256),
    "data_dir": Optional(Str()),
    "interactive": Optional(Bool()),  # null = auto: widgets in JupyterLab, static figures elsewhere
    "progress": Optional(Bool()),  # null = auto: progress bars in a Jupyter session only (headless runs print
    "allow_download": Bool(),      # the runner's per-cell progress instead of storing widgets in notebooks)
    "workers": Int(min=1, max=4096),  # sweep cells at once (cbir.sweep): 1 = one after another, no Dask
    "scheduler": Scheduler(),         # null = local; 'tcp://host:8786' = a running Dask scheduler; slurm/pbs
    "cluster": Optional(Dict()),      # dask-jobqueue settings for scheduler slurm/pbs (cores, memory, jobs, ...)
    "device": Choice("auto", "cpu", "cuda"),  # torch/faiss device: auto = cuda when available, else cpu
    # a capped test run (params/paper_limit.yaml): why; every report row then says so and is not comparable
    "limit": Optional(Str()),
    # a named network without its weights file: stop with WeightsNotFoundError (stop) or build it with
    # seeded random weights, marked as such in every output (random: the capped test only)
    "missing_weights": Choice("stop", "random"),
}
SHARED_DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "threads": 2,
    "data_dir": None,
    "interactive": None,
    "progress": None,
    "allow_download": False,
    "workers": 1,
    "scheduler": None,
    "cluster": None,
    "device": "auto",
    "limit": None,
    "missing_weights": "stop",
}


# --------------------------------------------------------------------------------------------- paths
def repo_root() -> Path:
    """The suite's root folder: ``CBIR_ROOT`` if set, else the checkout holding this package, else cwd."""
    env = os.environ.get("CBIR_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").exists() and (parent / "params").is_dir():
            return parent
    return Path.cwd().resolve()


def params_dir() -> Path:
    return repo_root() / "params"


# --------------------------------------------------------------------------------------------- Params
class Params(Mapping[str, Any]):
    """Validated parameters of one notebook section merged with the shared keys.

    Access as attributes (``P.seed``) or items (``P["seed"]``). ``profile`` and ``section`` are set; the
    output folders are derived from the profile: ``out_dir`` = ``outputs/<profile>``, ``figures_dir``,
    ``tables_dir`` and ``cache_dir`` (= ``outputs/cache``, shared across profiles, keyed by parameters).
    """

    def __init__(self, values: dict[str, Any], profile: str, section: str):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "profile", profile)
        object.__setattr__(self, "section", section)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"no parameter {name!r} in section {self.section!r}; known: {sorted(self._values)}"
            ) from None

    def __setattr__(self, name, value):
        raise AttributeError("Params are read-only; pass overrides to cbir.params.load instead")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in sorted(self._values.items()))
        return f"Params(profile={self.profile!r}, section={self.section!r}, {body})"

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def __reduce__(self):  # pickling (Dask sends Params to workers); __getattr__ would recurse otherwise
        return (Params, (self._values, self.profile, self.section))

    @property
    def out_dir(self) -> Path:
        return _mkdir(repo_root() / "outputs" / self.profile)

    @property
    def figures_dir(self) -> Path:
        return _mkdir(self.out_dir / "figures")

    @property
    def tables_dir(self) -> Path:
        return _mkdir(self.out_dir / "tables")

    @property
    def cache_dir(self) -> Path:
        return _mkdir(repo_root() / "outputs" / "cache")


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


# --------------------------------------------------------------------------------------------- loading
def section_schema(section: str) -> dict[str, Spec]:
    """The schema of a notebook section, from ``cbir.schemas.<section>.SCHEMA``."""
    try:
        mod = importlib.import_module(f"cbir.schemas.{section}")
    except ModuleNotFoundError:
        known = available_sections()
        raise ParamsError(f"unknown params section {section!r}; known sections: {known}") from None
    return mod.SCHEMA


def section_defaults(section: str) -> dict[str, Any]:
    """Values of keys a profile may leave out (``cbir.schemas.<section>.DEFAULTS``; most keys have none).

    Used for keys added after a profile's results were published, so that the published run's params
    digest (computed from the file as written) stays valid until that profile is re-run.
    """
    section_schema(section)
    return dict(getattr(importlib.import_module(f"cbir.schemas.{section}"), "DEFAULTS", {}))


def available_sections() -> list[str]:
    folder = Path(__file__).parent / "schemas"
    return sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))


def _validate(values: Mapping[str, Any], schema: Mapping[str, Spec], where: str) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if key not in schema:
            raise ParamsError(
                f"unknown key {key!r} in {where}; allowed keys: {sorted(schema)}. "
                "Fix the spelling or remove it."
            )
        try:
            out[key] = schema[key].check(key, value)
        except ParamsError as err:
            raise ParamsError(f"{err} (in {where})") from None
    return out


def read_profile(profile: str, root: Path | None = None, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read ``<root>/params/<profile>.yaml`` as a dict (no validation; ``root`` default :func:`repo_root`).

    A profile may start from another one: ``extends: paper`` takes every section of ``paper.yaml`` and
    replaces the keys this file sets (section by section), as ``params/paper_limit.yaml`` does.
    """
    data = _read_yaml(profile, root)
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or base in (profile, *_seen):
        raise ParamsError(f"params/{profile}.yaml: extends={base!r} must name another profile (no cycles)")
    merged = read_profile(base, root, (*_seen, profile))
    for section, values in data.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return merged


def _read_yaml(profile: str, root: Path | None = None) -> dict[str, Any]:
    folder = root / "params" if root is not None else params_dir()
    path = folder / f"{profile}.yaml"
    if not path.exists():
        avail = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ParamsError(f"profile {profile!r} not found ({path}); available profiles: {avail}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ParamsError(f"{path} must be a mapping of sections, got {type(data).__name__}")
    return data


def load(profile: str, section: str, overrides: Mapping[str, Any] | None = None) -> Params:
    """Load and validate the parameters of one notebook section.

    Parameters
    ----------
    profile : {"smoke", "medium", "paper"} or the stem of any ``params/*.yaml``
    section : str
        Notebook section (``quickstart``, ``rdcnn``, ``latent_hash``, ``drhn``, ``phash``, ``retarget``).
    overrides : dict, optional
        Values that replace the profile's (papermill's ``-p overrides '{...}'``). Keys may be plain
        (``"m"``) or qualified (``"shared.seed"``, ``"rdcnn.m"``).

    Returns
    -------
    Params
        Shared keys (defaults filled in) and every key of the section, validated.

    Raises
    ------
    ParamsError
        Unknown profile/section/key, wrong type or out-of-range value, or a section key missing from the
        profile; the message names the key, the allowed values and the file to fix.
    """
    if not isinstance(profile, str):
        raise ParamsError(f"profile must be a string such as 'smoke', got {profile!r}")
    data = read_profile(profile)
    where = f"params/{profile}.yaml"
    schema = section_schema(section)
    shared = {**SHARED_DEFAULTS, **_validate(data.get("shared") or {}, SHARED_SCHEMA, f"{where} [shared]")}
    sec = {**section_defaults(section), **_validate(data.get(section) or {}, schema, f"{where} [{section}]")}

    overrides = parse_overrides(overrides)
    for key, value in overrides.items():
        scope, _, name = key.rpartition(".")
        if scope not in ("", "shared", section):
            raise ParamsError(f"override {key!r} targets section {scope!r}, but this notebook reads {section!r}; "
                              f"use a plain key or '{section}.<key>' / 'shared.<key>'")
        in_shared, in_section = name in SHARED_SCHEMA, name in schema
        if scope == "" and in_shared and in_section:
            raise ParamsError(f"override {key!r} is ambiguous (a shared and a {section!r} key); "
                              f"write 'shared.{name}' or '{section}.{name}'")
        if in_shared and scope in ("", "shared"):
            shared.update(_validate({name: value}, SHARED_SCHEMA, "overrides"))
        elif in_section and scope in ("", section):
            sec.update(_validate({name: value}, schema, "overrides"))
        else:
            allowed = sorted(SHARED_SCHEMA) if scope == "shared" else (
                sorted(schema) if scope == section else sorted(set(SHARED_SCHEMA) | set(schema)))
            raise ParamsError(f"unknown override {key!r}; allowed keys{f' of {scope}' if scope else ''}: {allowed}")
    missing = sorted(set(schema) - set(sec))
    if missing:
        raise ParamsError(f"{where} [{section}] is missing key(s) {missing}; add them (see params/smoke.yaml)")
    values = {**shared, **sec}
    if values["progress"] is None:  # auto, like ``interactive``: a kernel started by a Jupyter server
        values["progress"] = "JPY_SESSION_NAME" in os.environ
    for check in section_checks(section):
        problem = check(values)
        if problem:
            raise ParamsError(f"{problem} (params/{profile}.yaml [{section}] with overrides {overrides})")
    return Params(values, profile, section)


def parse_overrides(overrides: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Overrides as a dict: a mapping as it is, or a JSON / YAML string (papermill's ``-p`` passes strings).

    ``'{"k": 5}'`` and ``"k: 5"`` both give ``{"k": 5}``; an empty string gives ``{}``.
    """
    if overrides is None:
        return {}
    if isinstance(overrides, str):
        try:
            parsed = yaml.safe_load(overrides) if overrides.strip() else {}
        except yaml.YAMLError as err:
            raise ParamsError(f"overrides {overrides!r} is not JSON/YAML: {err}. "
                              "Write e.g. -p overrides '{\"k\": 5}'") from None
        if not isinstance(parsed, dict):
            raise ParamsError(f"overrides {overrides!r} must be a mapping such as '{{\"k\": 5}}', "
                              f"got {type(parsed).__name__}")
        return parsed
    if not isinstance(overrides, Mapping):
        raise ParamsError(f"overrides must be a dict or a JSON string, got {type(overrides).__name__}")
    return dict(overrides)


def section_checks(section: str) -> list:
    """Cross-field checks of a section: ``cbir.schemas.<section>.CHECKS``, functions of the merged values
    returning a message (naming the keys and the fix) or None."""
    mod = importlib.import_module(f"cbir.schemas.{section}")
    return list(getattr(mod, "CHECKS", ()))


def member_of(key: str, container: str):
    """A check that ``values[key]`` is one of ``values[container]`` (a cross-field rule for ``CHECKS``)."""
    def check(v):
        if v.get(key) is not None and v[key] not in v[container]:
            return f"{key}={v[key]!r} is not in {container}={v[container]!r}; pick one of them or add it to {container}"
        return None
    return check


def subset_of(key: str, container: str):
    """A check that every item of ``values[key]`` is in ``values[container]``."""
    def check(v):
        extra = [x for x in v.get(key) or [] if x not in v[container]]
        if extra:
            return f"{key} has {extra} not in {container}={v[container]!r}; remove them or add them to {container}"
        return None
    return check


def fits_dataset(dataset: str, split: str, per_class: Sequence[str] = (), total: Sequence[str] = (),
                 capped_by: str | None = None, reserve: Sequence[str] = (), times: str | None = None):
    """A check that sizes fit the dataset they draw from (read cheaply by :func:`cbir.data.class_counts`).

    Parameters
    ----------
    dataset : str
        The key naming the dataset (``"dataset"``, ``"cnn_dataset"``, ...).
    split : str
        The split the sizes draw from.
    per_class : keys
        Images per class: an error when no class has that many (every class would be capped silently).
    total : keys
        Images drawn from the whole split (queries): an error when the split, after the per-class cap
        ``capped_by`` and minus the images taken by the ``reserve`` keys, holds fewer.
    times : key, optional
        A list whose product is the number of items cut from each image (``tile_grid``).

    A dataset that is not on disk, or whose size is not fixed (``synthetic``), is not checked here; loading
    it reports its own problem.
    """
    def check(v):
        name = v.get(dataset)
        if not name:
            return None
        counts = _class_counts(str(name), split, v.get("data_dir"))
        if counts is None or not len(counts):
            return None
        if times and v.get(times):
            counts = counts * int(np.prod(v[times]))
        where = f"{name} [{split}]"
        for key in per_class:
            n = v.get(key)
            if n is not None and n > counts.max():
                return (f"{key}={n} but no class of {where} has that many images (classes hold {counts.min()}.."
                        f"{counts.max()}); use at most {counts.max()}")
        cap = v.get(capped_by) if capped_by else None
        avail = int((np.minimum(counts, cap) if cap else counts).sum()) - sum(int(v.get(k) or 0) for k in reserve)
        for key in total:
            n = v.get(key)
            if n is not None and n > avail:
                how = f" with {capped_by}={cap}" if cap else ""
                how += f" cut by {times}={v[times]}" if times and np.prod(v.get(times) or 1) > 1 else ""
                how += "".join(f", minus {k}={v[k]}" for k in reserve if v.get(k))
                return f"{key}={n} but {where}{how} holds {avail} images; use at most {avail}"
        return None
    return check


def _class_counts(name: str, split: str, data_dir) -> "np.ndarray | None":
    from cbir.data import class_counts

    key = (name, split, str(data_dir), os.environ.get("CBIR_DATA_DIR", ""))
    if name.startswith("folder:"):  # a user's folder may change between loads: count it each time
        return class_counts(name, split, data_dir)
    if key not in _COUNTS:
        _COUNTS[key] = class_counts(name, split, data_dir)
    return _COUNTS[key]


_COUNTS: dict = {}


def validate_profile(profile: str) -> None:
    """Validate every section of ``params/<profile>.yaml`` (the runner calls this before any notebook).

    Raises :class:`ParamsError` for an unknown section or any invalid key, so a bad profile fails in
    seconds rather than in the middle of a run.
    """
    data = read_profile(profile)
    unknown = set(data) - {"shared", *available_sections()}
    if unknown:
        raise ParamsError(f"unknown section(s) {sorted(unknown)} in params/{profile}.yaml; "
                          f"allowed: {['shared', *available_sections()]}")
    for section in available_sections():
        load(profile, section)
