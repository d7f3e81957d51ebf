"""The experiment registry: load, validate and resolve `config.yaml`.

Validation has two layers, both reporting the offending key as a dotted path:

1. the JSON schema in ``workflow/schemas/config.schema.yaml`` (types, unknown keys), the
   same file ``snakemake.utils.validate`` uses in the Snakefile. Its lists of allowed values
   are not written in the file: :func:`load_schema` fills them from the code that defines
   them (:data:`FAMILIES`, the encodings registry, the padding module, the metric registry,
   the device resolver), so each list has one source;
2. :func:`check`, the cross-references a schema cannot express (a table row naming a missing
   experiment, a scale the architecture cannot produce, an unknown preset, ...). The Snakefile
   calls it too, so a bad config fails the same way in ``pegan`` and in ``snakemake``.

:func:`resolve` turns (experiment, preset) into an :class:`ExperimentSpec`: every switch
explicit, paper pixels mapped to preset pixels, the training schedule in kimg.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from pegan import encodings
from pegan.device import DEVICES
from pegan.errors import ConfigError
from pegan.metrics import registry as metric_registry
from pegan.metrics.fid import inception_path_for
from pegan.models import FAMILIES as _FAMILY_MODULES
from pegan.nn.padding import SINGAN_PADDINGS, UPSAMPLE_KINDS, padded_head_size, padding_values
from pegan.provenance import CPU_KERNELS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config.yaml"
_SCHEMA_CANDIDATES = (
    REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml",
    Path(__file__).resolve().parent / "_schema" / "config.schema.yaml",
)

FAMILIES = tuple(_FAMILY_MODULES)
# A table column's snapshot: the best snapshot before N million images, or the final one.
SNAPSHOT_PATTERN = r"final|[0-9]+(?:\.[0-9]+)?M"
# The paper resolution a preset's `resolution` entry stands for, per family.
REFERENCE_RESOLUTION = {"stylegan2": 256, "pggan": 128, "dcgan": 128}

# Architecture switches per family: name -> default (None: derived in _switch_defaults).
SWITCHES: dict[str, dict[str, Any]] = {
    "stylegan2": {
        "resolution": 256,
        "scales": None,                 # [resolution]
        "upsample": "deconv",
        "padding": True,
        "head": "const",
        "head_mode": "interp",
        "spe_dim": 256,
        "spe_centered": False,
        "channel_multiplier": 2,
        "d_channel_multiplier": None,   # = channel_multiplier
        "discriminator": None,          # standard if single-scale else multiscale
    },
    "pggan": {
        "resolution": 128,
        "padding": True,
        "head": "const",
        "spe_dim": 256,
        "spe_centered": False,
    },
    "dcgan": {
        "resolution": 128,
        "upsample": "deconv",
        "padding": True,
        "head": "const",
        "spe_dim": 256,
        "spe_centered": False,
    },
    "singan": {
        "padding": "zero",
        "head": "noise",
        "spe_dim": 4,
        "spe_centered": False,
        "disc_norm": "batch",
    },
}
_BUDGET = re.compile(r"^([0-9]+(?:\.[0-9]+)?)M$")


def allowed_values(family: str) -> dict[str, tuple]:
    """The values a family accepts for its closed switches: `padding` (the padding module)
    and `head` (its default non-positional input plus every registered encoding)."""
    return {"padding": padding_values(family),
            "head": encodings.family_heads(SWITCHES[family]["head"])}


# --------------------------------------------------------------------------- loading


def repo_file(path: str | Path) -> Path:
    """A path from the config (e.g. a reported table): relative to the working directory
    when it exists there (a workflow run), else to the repository."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


def schema_path() -> Path:
    for candidate in _SCHEMA_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise ConfigError("config schema not found: reinstall pegan (pip install -e .)")


def load_schema() -> dict:
    """The config schema with its lists of allowed values filled from the code."""
    schema = yaml.safe_load(schema_path().read_text())
    defs, props = schema["$defs"], schema["properties"]
    exp = defs["experiment"]["properties"]
    exp["arch"]["enum"] = list(FAMILIES)
    exp["head"]["enum"] = list(encodings.all_heads())
    exp["head_mode"]["enum"] = list(encodings.HEAD_MODES)
    exp["upsample"]["enum"] = list(UPSAMPLE_KINDS)
    exp["padding"]["oneOf"] = [{"type": "boolean"}, {"enum": list(SINGAN_PADDINGS)}]
    defs["preset"]["properties"]["device"]["enum"] = list(DEVICES)
    props["cpu_kernels"]["enum"] = list(CPU_KERNELS)
    for kind in ("int", "number"):   # per-family maps of the families with a resolution
        defs[f"family_map_{kind}"]["properties"] = {
            family: {"$ref": f"#/$defs/positive_{kind}"} for family in REFERENCE_RESOLUTION}
    defs["preset"]["properties"]["gpus"]["properties"]["train"]["patternProperties"] = {
        "^(" + "|".join(FAMILIES) + ")$": {"type": "integer", "minimum": 0}}
    defs["preset"]["properties"]["train"]["patternProperties"] = {
        "^(" + "|".join(FAMILIES) + ")$": {"type": "object"}}
    outputs = list(metric_registry.outputs())
    column = defs["column"]["properties"]
    column["metric"]["enum"] = outputs
    column["snapshot"]["pattern"] = f"^({SNAPSHOT_PATTERN})$"
    props["tolerances"]["patternProperties"] = {
        "^(" + "|".join(outputs) + ")$": defs["tolerance"]}
    samples = defs["preset"]["properties"]["samples"]["properties"]
    for metric in metric_registry.metrics().values():
        samples.setdefault(metric.samples, {"$ref": "#/$defs/positive_int"})
    props["metrics"]["properties"] = {
        s.name: {**s.schema, "default": s.default, "description": s.description}
        for s in metric_registry.settings().values()}
    # a preset's `metrics:` overrides the global section key by key: same keys, no defaults
    # (a default there would hide the global value)
    defs["preset"]["properties"]["metrics"]["properties"] = {
        s.name: {**s.schema, "description": s.description}
        for s in metric_registry.settings().values()}
    return schema


def _key_path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top level>"


def schema_errors(config: Mapping, schema: Mapping | None = None) -> list[str]:
    """All JSON-schema violations of `config` (against `schema`, default
    :func:`load_schema`), each as 'dotted.key: problem'."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema or load_schema())
    messages = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        where = _key_path(error.absolute_path)
        if error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            for key in extra:
                messages.append(f"{_key_path([*error.absolute_path, key])}: unknown key")
            continue
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            key = missing[0] if missing else "?"
            messages.append(f"{_key_path([*error.absolute_path, key])}: required key is missing")
            continue
        if error.validator == "propertyNames":
            messages.append(f"{where}: invalid name {error.instance!r} (use lowercase letters, digits, '-')")
            continue
        messages.append(f"{where}: {error.message}")
    return messages


def _schema_defaults(config: dict, schema: Mapping) -> None:
    """Fill in place every ``default`` of the schema (the only place defaults are written),
    the way ``snakemake.utils.validate(set_default=True)`` does."""
    import jsonschema

    base = jsonschema.Draft202012Validator
    check_properties = base.VALIDATORS["properties"]

    def properties(validator, props, instance, sub_schema):
        if isinstance(instance, dict):
            for key, prop in props.items():
                if isinstance(prop, dict) and "default" in prop:
                    instance.setdefault(key, copy.deepcopy(prop["default"]))
        yield from check_properties(validator, props, instance, sub_schema)

    filling = jsonschema.validators.extend(base, {"properties": properties})
    for _ in filling(schema).iter_errors(config):
        pass   # the config is schema-valid here; iterating fills the defaults


def _fill_defaults(config: dict, schema: Mapping) -> dict:
    """The schema's defaults, then the derived ones (a metric's sample count from its
    fallback key: structure from swd)."""
    config = copy.deepcopy(config)
    _schema_defaults(config, schema)
    for preset in config.get("presets", {}).values():
        preset.setdefault("gpus", {"train": {}, "evaluate": 0})
        preset.setdefault("overrides", {})
        samples = preset.get("samples", {})
        for metric in metric_registry.metrics().values():
            if metric.samples_fallback in samples:
                samples.setdefault(metric.samples, samples[metric.samples_fallback])
    return config


def validate(config: Mapping) -> dict:
    """Schema + cross-reference validation; returns the config with defaults filled in."""
    schema = load_schema()          # read and filled once per validation
    errors = schema_errors(config, schema)
    if errors:
        raise ConfigError(_join(errors))
    config = _fill_defaults(dict(config), schema)
    errors = check(config)
    if errors:
        raise ConfigError(_join(errors))
    return _preset_columns(config)


def _preset_columns(config: dict) -> dict:
    """Drop the table columns whose `presets` exclude the selected preset (the clean-FID
    column only `paper` has), so tables, plan, compare and figures all see one column list."""
    preset = config["preset"]
    for table in config["tables"].values():
        dropped = {c["key"] for c in table["columns"] if preset not in c.get("presets", [preset])}
        if not dropped:
            continue
        table["columns"] = [c for c in table["columns"] if c["key"] not in dropped]
        for row in table["rows"]:
            if "skip" in row:
                row["skip"] = [key for key in row["skip"] if key not in dropped]
    return config


def _join(errors: list[str]) -> str:
    if len(errors) == 1:
        return f"invalid config: {errors[0]}"
    return f"invalid config ({len(errors)} problems): " + "; ".join(errors)


def load(path: str | Path | None = None, overrides: Mapping | None = None) -> dict:
    """Read, merge `overrides` (e.g. {'preset': 'paper'}) and validate a config file."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"config file {path} not found: pass --config PATH")
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    config.update(overrides or {})
    return validate(config)


# ------------------------------------------------------------------ cross-references


def _switches(name: str, exp: Mapping) -> tuple[dict, list[str]]:
    """Explicit switches of one experiment (defaults filled) and the errors found."""
    arch = exp["arch"]
    errors = []
    allowed = SWITCHES[arch]
    for key in exp:
        if key not in ("arch", "data") and key not in allowed:
            errors.append(f"experiments.{name}.{key}: not a switch of arch {arch} "
                          f"(its switches: {', '.join(allowed)})")
    sw = {key: exp.get(key, default) for key, default in allowed.items()}
    for key, values in allowed_values(arch).items():
        if sw[key] not in values:
            errors.append(f"experiments.{name}.{key}: {sw[key]!r} is not available for {arch} "
                          f"(choose {', '.join(map(str, values))})")
    if arch == "stylegan2":
        sw["scales"] = list(sw["scales"] or [sw["resolution"]])
        if sw["d_channel_multiplier"] is None:
            sw["d_channel_multiplier"] = sw["channel_multiplier"]
        if sw["discriminator"] is None:
            sw["discriminator"] = "standard" if len(sw["scales"]) == 1 else "multiscale"
        errors += _check_stylegan2_scales(name, sw)
    return sw, errors


def _check_stylegan2_scales(name: str, sw: Mapping) -> list[str]:
    res, scales = sw["resolution"], sw["scales"]
    where = f"experiments.{name}"
    if res % 4 or (res // 4) & (res // 4 - 1):
        return [f"{where}.resolution: {res} is not 4 x 2^k (a StyleGAN2 output size)"]
    step = res // 4      # one extra head cell adds res/4 output pixels
    errors = []
    if sorted(scales)[0] != res:
        errors.append(f"{where}.scales: the smallest scale must be the resolution {res}")
    for s in scales:
        if s % step or s < res:
            errors.append(f"{where}.scales: {s} cannot be produced by a {res}-px StyleGAN2 "
                          f"(scales are {res} + k x {step})")
    if len(scales) > 1 and sw["discriminator"] == "standard":
        errors.append(f"{where}.discriminator: a multi-scale experiment needs 'multiscale'")
    return errors


def check(config: Mapping) -> list[str]:
    """Cross-reference checks on a schema-valid config; returns 'key: problem' strings."""
    errors: list[str] = []
    presets, datasets = config["presets"], config["datasets"]
    experiments, tables = config["experiments"], config["tables"]
    if config["preset"] not in presets:
        errors.append(f"preset: {config['preset']!r} is not a preset "
                      f"(choose {', '.join(presets)})")

    for name, ds in datasets.items():
        if ds["kind"] == "folder" and "path" not in ds:
            errors.append(f"datasets.{name}.path: required for kind 'folder'")
        if ds["kind"] == "skimage" and "image" not in ds:
            errors.append(f"datasets.{name}.image: required for kind 'skimage'")

    switches = {}
    for name, exp in experiments.items():
        sw, errs = _switches(name, exp)
        switches[name] = sw
        errors += errs

    roles = {exp["data"] for exp in experiments.values()}
    for pname, preset in presets.items():
        for role, ds in preset["data"].items():
            if ds not in datasets:
                errors.append(f"presets.{pname}.data.{role}: {ds!r} is not a dataset "
                              f"(known: {', '.join(datasets)})")
        for role in sorted(roles - set(preset["data"])):
            users = [n for n, e in experiments.items() if e["data"] == role]
            errors.append(f"presets.{pname}.data: no dataset for role {role!r} "
                          f"(used by experiments.{users[0]}.data)")
        for exp_name in preset.get("overrides", {}):
            if exp_name not in experiments:
                errors.append(f"presets.{pname}.overrides.{exp_name}: not an experiment")
        sg = preset["singan"]
        if sg["min_size"] > sg["max_size"]:
            errors.append(f"presets.{pname}.singan.min_size: larger than max_size")
        for name, sw in switches.items():
            family = experiments[name]["arch"]
            if family == "singan" or "resolution" not in sw:
                continue
            res_map = preset["resolution"]
            if family not in res_map:
                errors.append(f"presets.{pname}.resolution.{family}: required by experiments.{name}")
                continue
            for px in [sw["resolution"], *sw.get("scales", [])]:
                mapped = px * res_map[family] / REFERENCE_RESOLUTION[family]
                if mapped != int(mapped) or (px == sw["resolution"] and int(mapped) % 4):
                    errors.append(f"presets.{pname}.resolution.{family}: {res_map[family]} maps "
                                  f"{px} px of experiments.{name} to {mapped:g} px, not a valid size")
                    break
            for key in ("batch", "total_mimg"):
                if family not in preset["schedule"][key]:
                    errors.append(f"presets.{pname}.schedule.{key}.{family}: required by "
                                  f"experiments.{name}")

    for tname, table in tables.items():
        where = f"tables.{tname}"
        keys = [c["key"] for c in table["columns"]]
        for i, col in enumerate(table["columns"]):
            for name in col.get("presets", []):
                if name not in presets:
                    errors.append(f"{where}.columns[{i}].presets: {name!r} is not a preset "
                                  f"(choose {', '.join(presets)})")
        for dup in sorted({k for k in keys if keys.count(k) > 1}):
            errors.append(f"{where}.columns: duplicate key {dup!r}")
        ids = [str(r["id"]) for r in table["rows"]]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            errors.append(f"{where}.rows: duplicate id {dup!r}")
        for i, col in enumerate(table["columns"]):
            if metric_registry.outputs()[col["metric"]].levels and "level" not in col:
                errors.append(f"{where}.columns[{i}].level: required for metric {col['metric']}")
        for i, row in enumerate(table["rows"]):
            rwhere = f"{where}.rows[{i}]"
            exp_name = row["experiment"]
            if exp_name not in experiments:
                errors.append(f"{rwhere}.experiment: {exp_name!r} is not an experiment")
                continue
            for key in row.get("skip", []):
                if key not in keys:
                    errors.append(f"{rwhere}.skip: {key!r} is not a column of {tname}")
            sw = switches[exp_name]
            if "upsample_from" in row and row["upsample_from"] not in sw.get(
                    "scales", [sw.get("resolution")]):
                errors.append(f"{rwhere}.upsample_from: {row['upsample_from']} is not a scale "
                              f"experiments.{exp_name} generates")
            for j, col in enumerate(table["columns"]):
                if col["key"] in row.get("skip", []):
                    continue
                if col["scale"] != "max" and "resolution" in sw and col["scale"] < min(
                        sw.get("scales", [sw["resolution"]])) / 2:
                    errors.append(f"{where}.columns[{j}].scale: {col['scale']} is far below what "
                                  f"experiments.{exp_name} generates")
    ids = [c["id"] for c in config.get("claims", [])]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        errors.append(f"claims: duplicate id {dup!r}")
    for i, claim in enumerate(config.get("claims", [])):
        where = f"claims[{i}]"
        table = tables.get(claim["table"])
        if table is None:
            errors.append(f"{where}.table: {claim['table']!r} is not a table")
            continue
        if claim["column"] not in [c["key"] for c in table["columns"]]:
            errors.append(f"{where}.column: {claim['column']!r} is not a column of {claim['table']}")
        row_ids = {str(r["id"]) for r in table["rows"]}
        for key in ("better", "worse", "best", "close", "to"):
            if key in claim and str(claim[key]) not in row_ids:
                errors.append(f"{where}.{key}: {claim[key]!r} is not a row of {claim['table']}")
        for row in claim.get("among", []):
            if str(row) not in row_ids:
                errors.append(f"{where}.among: {row!r} is not a row of {claim['table']}")
    for pname, preset in presets.items():
        for cid in preset.get("claims", []) or []:
            if cid not in ids:
                errors.append(f"presets.{pname}.claims: {cid!r} is not a claim id")
    return errors


# ------------------------------------------------------------------- metric settings

# The paper protocol's VGG16 (precision/recall): NVIDIA's TorchScript, the URL of
# stylegan2-ada-pytorch's metrics/precision_recall.py (NVlabs/stylegan2-ada-pytorch@d72cc7d).
VGG16_FILE = "vgg16.pt"
VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"


def metric_settings(config: Mapping, preset: str | None = None) -> dict:
    """The effective metric settings of `preset` (default: the config's): the registered
    defaults, then the global `metrics:` section, then the preset's own `metrics:`.

    This is the one place that resolves them: the workflow passes the result to every
    `pegan evaluate` and `pegan real-features` job, `pegan validate` checks its weight files.
    """
    preset = preset or config["preset"]
    if preset not in config["presets"]:
        raise ConfigError(f"preset: {preset!r} is not a preset (choose {', '.join(config['presets'])})")
    out = metric_registry.default_settings()
    out.update(config.get("metrics") or {})
    out.update(config["presets"][preset].get("metrics") or {})
    return out


def _setting_key(config: Mapping, preset: str, name: str) -> str:
    """Dotted config key a metric setting of `preset` comes from (for error messages)."""
    if name in (config["presets"][preset].get("metrics") or {}):
        return f"presets.{preset}.metrics.{name}"
    return f"metrics.{name}"


def inception_modes(config: Mapping, preset: str | None = None) -> list[str]:
    """FID modes whose Inception pass the preset's tables read (fid_mode first)."""
    from pegan.evaluate import feature_modes

    preset = preset or config["preset"]
    settings = metric_settings(config, preset)
    metrics = {metric_registry.owner(col["metric"]).name
               for table in config["tables"].values() for col in table["columns"]
               if preset in col.get("presets", [preset])}
    return feature_modes(sorted(metrics) or "fid", settings)


def missing_weights(config: Mapping, preset: str | None = None) -> list[str]:
    """One line per weight file the preset's metric protocol needs and cannot find here,
    naming the file, the config key and where it comes from (pegan never downloads)."""
    from pegan.metrics import inception

    preset = preset or config["preset"]
    settings = metric_settings(config, preset)
    problems = []
    if settings.get("pr_network") == "vgg16":
        key = _setting_key(config, preset, "vgg16_path")
        path = settings.get("vgg16_path")
        where = (f"NVIDIA's VGG16 TorchScript {VGG16_FILE} ({VGG16_URL}, the file "
                 "stylegan2-ada-pytorch's precision/recall downloads)")
        if not path:
            problems.append(f"{key}: pr_network vgg16 needs {where}; set it to the file's path")
        elif not Path(path).expanduser().is_file():
            problems.append(f"{key}: {path} not found: precision/recall with pr_network vgg16 "
                            f"needs {where}; download it to {path}")
    key = _setting_key(config, preset, "inception_path")
    for mode in inception_modes(config, preset):
        problem = inception.missing_inception(mode, inception_path_for(settings, mode), key)
        if problem:
            problems.append(problem)
    return problems


def check_weights(config: Mapping, preset: str | None = None) -> None:
    """Raise a one-line ConfigError when a weight file of the preset's metric protocol is
    missing (``pegan validate``, and the workflow before its first job)."""
    problems = missing_weights(config, preset)
    if problems:
        preset = preset or config["preset"]
        raise ConfigError(f"preset {preset}: missing metric weights: " + "; ".join(problems))


# ------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class ExperimentSpec:
    """One experiment under one preset: every switch explicit, sizes in preset pixels."""

    name: str
    arch: str
    preset: str
    dataset: str                     # dataset name (after the preset's role mapping)
    dataset_spec: dict
    switches: dict                   # architecture switches (paper units)
    resolution: int | None           # base output size, preset pixels
    scales: list[int]                # training output sizes, preset pixels (StyleGAN2)
    paper_scales: list[int]
    capacity: dict
    batch: int
    total_kimg: float
    snapshot_every_kimg: float       # snapshot interval (kimg); see snapshot_grid()
    kimg_per_mimg: float
    device: str
    gpus: int                        # GPUs per training job (0: CPU)
    singan: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    # the preset's training settings of this family (presets.<p>.train.<arch>), applied over
    # the recipe's official defaults and under `pegan train --set` (pegan.train.settings_for)
    train: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def data_resolution(self) -> int:
        """Size (px) of the training images the run reads (``prepare-data --resolution``):
        the largest training scale, or SinGAN's ``max_size`` (its image's longer side)."""
        return int(self.singan["max_size"]) if self.arch == "singan" else max(self.scales)

    @property
    def head_size(self) -> int:
        """StyleGAN2 head (input) size at the base scale: 4, or 6 without padding."""
        return padded_head_size(4, self.switches.get("padding", True))

    def head_increment(self, px: int) -> int:
        """Official `chosen_scale` s for an output of `px` preset pixels: (4 + s) * res / 4."""
        step = self.resolution // 4
        if px % step:
            raise ConfigError(f"scale {px} px is not producible by {self.name} (multiples of {step})")
        return px // step - 4

    def to_preset_px(self, paper_px: int) -> int:
        """Paper pixels -> this preset's pixels (same ratio to the base resolution)."""
        if self.resolution is None:
            return paper_px
        return int(paper_px * self.resolution / self.switches["resolution"])

    def snapshot_grid(self) -> list[float]:
        """Image counts (kimg) at which snapshots are taken; the last is the final model."""
        return _snapshot_grid(self.total_kimg, self.snapshot_every_kimg) if self.total_kimg else []

    def budget_kimg(self, snapshot: str) -> float:
        """Image budget (kimg) of a table column's snapshot: '10M' or 'final'."""
        if snapshot == "final":
            return self.total_kimg
        match = _BUDGET.match(snapshot)
        if not match:
            raise ConfigError(f"snapshot {snapshot!r}: use '<N>M' or 'final'")
        return min(float(match.group(1)) * self.kimg_per_mimg, self.total_kimg)


def _snapshot_grid(total_kimg: float, every_kimg: float) -> list[float]:
    n = int(math.floor(total_kimg / every_kimg + 1e-9))
    grid = [round(every_kimg * (i + 1), 6) for i in range(n)]
    if not grid or grid[-1] < total_kimg - 1e-9:
        grid.append(round(total_kimg, 6))
    return grid


def resolve(config: Mapping, experiment: str, preset: str | None = None) -> ExperimentSpec:
    """The settings of `experiment` under `preset` (default: the config's preset)."""
    preset = preset or config["preset"]
    if preset not in config["presets"]:
        raise ConfigError(f"preset: {preset!r} is not a preset (choose {', '.join(config['presets'])})")
    if experiment not in config["experiments"]:
        raise ConfigError(f"experiment {experiment!r} is not in the registry "
                          f"(known: {', '.join(config['experiments'])})")
    exp = config["experiments"][experiment]
    p = config["presets"][preset]
    arch = exp["arch"]
    sw, errors = _switches(experiment, exp)
    if errors:
        raise ConfigError(_join(errors))
    dataset = p["data"][exp["data"]]
    override = p.get("overrides", {}).get(experiment, {})
    if arch == "singan":
        resolution, scales, paper_scales = None, [], []
        batch, total_kimg, every = 1, 0.0, 0.0
    else:
        ref = REFERENCE_RESOLUTION[arch]
        factor = p["resolution"][arch] / ref
        resolution = int(sw["resolution"] * factor)
        paper_scales = list(sw.get("scales", [sw["resolution"]]))
        scales = [int(s * factor) for s in paper_scales]
        batch = override.get("batch", p["schedule"]["batch"][arch])
        total_mimg = override.get("total_mimg", p["schedule"]["total_mimg"][arch])
        kpm = p["schedule"]["kimg_per_mimg"]
        total_kimg = total_mimg * kpm
        every = p["schedule"]["snapshot_mimg"] * kpm
    return ExperimentSpec(
        name=experiment, arch=arch, preset=preset, dataset=dataset,
        dataset_spec=dict(config["datasets"][dataset]), switches=sw,
        resolution=resolution, scales=scales, paper_scales=paper_scales,
        capacity=dict(p["capacity"]), batch=batch, total_kimg=total_kimg,
        snapshot_every_kimg=every, kimg_per_mimg=p["schedule"]["kimg_per_mimg"],
        device=p["device"], gpus=p["gpus"]["train"].get(arch, 0),
        singan={**p["singan"], **{k: override[k] for k in ("max_size",) if k in override}}
        if arch == "singan" else {},
        samples=dict(p["samples"]),
        train=dict(p.get("train", {}).get(arch, {})),
    )
