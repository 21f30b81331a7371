"""Training configuration: a typed schema read from YAML or JSON, strict about unknown keys.

Every section is a dataclass; :func:`load_config` builds them from a mapping and raises
:class:`~trajcrafter_core.errors.TrajCrafterError` for unknown keys (with a "did you mean"
hint), wrong types and out-of-range values, so a typo never silently falls back to a default.

Overrides from the command line use dotted paths: ``optim.lr=2e-6`` (values parsed as YAML).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

TRACKERS = ("tensorboard", "wandb")
# YAML 1.1 reads a bare `no` as false: the settings where that word is a valid value
_YAML_WORDS = {"train.mixed_precision": {False: "no"}}

from trajcrafter_core.errors import TrajCrafterError

# Parameter-name prefixes trained by default in each stage (see training/README.md).
STAGE_TRAINABLE_DEFAULTS = {
    1: ["patch_embed.", "transformer_blocks."],
    2: ["perceiver_cross_attention.", "ref_patch_embed."],
}
# LoRA target module names (``nn.Linear`` leaf names) by stage.
STAGE_LORA_TARGET_DEFAULTS = {
    1: ["to_q", "to_k", "to_v", "to_out.0"],
    2: ["to_q", "to_kv", "to_out"],
}
DATA_KINDS = ("double_reprojection", "triplet")
# Names people often type for a key (used only for "did you mean" hints).
_KEY_ALIASES = {"learning_rate": "lr", "learningrate": "lr", "steps": "max_steps", "num_steps": "max_steps",
                "output_dir": "dir", "grad_accum": "gradient_accumulation_steps", "bs": "batch_size",
                "frames": "num_frames", "precision": "mixed_precision", "warmup": "warmup_steps"}


@dataclass
class ModelConfig:
    """Where the weights come from.

    ``base_dir``: a CogVideoX-Fun-5B-InP style folder (``vae/``, ``text_encoder/``,
    ``tokenizer/``, ``scheduler/``); the VAE/T5 run online unless the shards carry latents.
    ``transformer_dir``: TrajectoryCrafter transformer folder (config.json + safetensors) to
    start from; stage 2 usually starts from stage 1's export.
    """

    base_dir: str = ""
    transformer_dir: str = ""
    empty_prompt_embeds: str = ""  # safetensors with the "" prompt's T5 embeddings (prepare_latents.py)


@dataclass
class DataConfig:
    """Which shards to stream and the clip geometry every sample must have."""

    shards: List[str] = field(default_factory=list)  # files or glob patterns
    kinds: List[str] = field(default_factory=list)  # empty = the stage default
    num_frames: int = 49
    height: int = 384
    width: int = 672
    batch_size: int = 1
    num_workers: int = 0
    shuffle: bool = True
    # true: train from cached latents (prepare_latents.py); shards without them are an error.
    # false: load the VAE and T5 on every process and encode each batch (slow).
    use_latents: bool = True
    reference_frames: int = 10  # source frames given to the reference stream (official: 10)
    # stage 1's data mix: kind -> weight, e.g. {double_reprojection: 3, triplet: 1}; empty = every
    # sample once per epoch (the kinds in proportion to their sample counts)
    mix: Dict[str, float] = field(default_factory=dict)


@dataclass
class OptimConfig:
    lr: float = 1e-5
    weight_decay: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant"  # any name diffusers.optimization.get_scheduler knows
    warmup_steps: int = 0


@dataclass
class CfgDropoutConfig:
    """Probabilities of dropping each condition (classifier-free guidance training)."""

    text: float = 0.1
    reference: float = 0.0
    condition: float = 0.0


@dataclass
class LoraConfig:
    enabled: bool = False
    rank: int = 16
    alpha: float = 16.0
    dropout: float = 0.0
    target_modules: List[str] = field(default_factory=list)  # empty = the stage default


@dataclass
class EmaConfig:
    enabled: bool = False
    decay: float = 0.9999
    update_every: int = 1


@dataclass
class TrainConfig:
    max_steps: int = 1000
    gradient_accumulation_steps: int = 1
    mixed_precision: str = "bf16"  # "no", "bf16" or "fp16"
    gradient_checkpointing: bool = True
    seed: int = 42
    trainable: List[str] = field(default_factory=list)  # empty = the stage default
    noise_aug_mean: float = -3.0  # render noise augmentation: sigma = exp(N(mean, std))
    noise_aug_std: float = 0.5
    cfg_dropout: CfgDropoutConfig = field(default_factory=CfgDropoutConfig)


@dataclass
class ValidationConfig:
    """Validation every ``every`` steps on held-out ``shards`` (read like the training shards:
    cached latents when ``data.use_latents``): the loss of the first ``loss_samples`` samples
    (fixed noise and timesteps) and ``videos`` fixed conditions sampled to mp4 under
    ``<output.dir>/validation/``."""

    shards: List[str] = field(default_factory=list)
    every: int = 0  # 0 = no validation
    loss_samples: int = 8
    videos: int = 2
    num_inference_steps: int = 25
    guidance_scale: float = 6.0
    seed: int = 0


@dataclass
class OutputConfig:
    dir: str = "runs/trajcrafter"
    checkpoint_every: int = 500
    keep_last: int = 3
    log_every: int = 10
    export_dir: str = ""  # default: <dir>/export
    export_ema: bool = True  # export EMA weights when EMA is enabled
    export_dtype: str = "bf16"  # "fp32", "bf16" or "fp16"
    # with LoRA: the adapter alone (diffusers/PEFT naming) in <dir>/lora, besides the merged export
    export_lora: bool = True
    report_to: List[str] = field(default_factory=lambda: ["tensorboard"])  # + "wandb" if installed
    progress_bar: bool = True


@dataclass
class Config:
    stage: int = 1
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    # -- derived values -------------------------------------------------------------------
    @property
    def trainable_prefixes(self) -> List[str]:
        return list(self.train.trainable) or list(STAGE_TRAINABLE_DEFAULTS[self.stage])

    @property
    def data_kinds(self) -> List[str]:
        if self.data.kinds:
            return list(self.data.kinds)
        return list(DATA_KINDS) if self.stage == 1 else ["triplet"]

    @property
    def uses_reference(self) -> bool:
        """Stage 1 skips the reference (cross-attention) stream; stage 2 uses it."""
        return self.stage == 2

    @property
    def lora_targets(self) -> List[str]:
        return list(self.lora.target_modules) or list(STAGE_LORA_TARGET_DEFAULTS[self.stage])

    @property
    def export_path(self) -> Path:
        return Path(self.output.export_dir) if self.output.export_dir else Path(self.output.dir) / "export"

    @property
    def lora_export_path(self) -> Path:
        return Path(self.output.dir) / "lora"

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------
# Strict construction from mappings
# ---------------------------------------------------------------------------------------


def _fail(path: str, message: str) -> TrajCrafterError:
    where = f"config key '{path}'" if path else "config"
    return TrajCrafterError(f"{where}: {message}")


def _coerce(value: Any, annotation: Any, path: str) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, Mapping):
            raise _fail(path, f"must be a mapping (section), got {type(value).__name__} {value!r}.")
        return _build(annotation, value, path)
    if origin in (dict, Dict, Mapping):
        key_type, item_type = typing.get_args(annotation) or (str, Any)
        if not isinstance(value, Mapping):
            raise _fail(path, f"must be a mapping, got {type(value).__name__} {value!r}.")
        return {_coerce(k, key_type, path): _coerce(v, item_type, f"{path}.{k}") for k, v in value.items()}
    if origin in (list, List, Sequence):
        (item_type,) = typing.get_args(annotation) or (Any,)
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise _fail(path, f"must be a list, got {type(value).__name__} {value!r}.")
        return [_coerce(v, item_type, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], path)
    if annotation is bool:
        if not isinstance(value, bool):
            raise _fail(path, f"must be true or false, got {value!r}.")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, f"must be an integer, got {value!r}.")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            # YAML 1.1 reads "1e-5" as a string; accept numeric strings explicitly.
            if isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
            raise _fail(path, f"must be a number, got {value!r}.")
        return float(value)
    if annotation is str:
        if path in _YAML_WORDS and value in _YAML_WORDS[path]:
            return _YAML_WORDS[path][value]
        if not isinstance(value, str):
            raise _fail(path, f"must be a string, got {value!r}.")
        return value
    return value


def _build(cls, data: Mapping[str, Any], path: str = ""):
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = unknown[0]
        full = f"{path}.{key}" if path else str(key)
        close = difflib.get_close_matches(str(key), names + list(_KEY_ALIASES), n=1)
        guess = _KEY_ALIASES.get(close[0], close[0]) if close else None
        hint = f" Did you mean '{guess}'?" if guess in names else ""
        raise _fail(
            full,
            f"unknown key.{hint} Valid keys here: {', '.join(names)}. Unknown keys are an error "
            f"so that a typo never silently keeps a default.",
        )
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{path}.{name}" if path else name)
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    def need(cond: bool, key: str, message: str) -> None:
        if not cond:
            raise _fail(key, message)

    need(cfg.stage in (1, 2), "stage", f"must be 1 or 2, got {cfg.stage}.")
    d = cfg.data
    need((d.num_frames - 1) % 4 == 0 and d.num_frames >= 1, "data.num_frames",
         f"must be 4k+1 (e.g. 49) for the video VAE, got {d.num_frames}.")
    need(d.height > 0 and d.height % 16 == 0, "data.height", f"must be a positive multiple of 16, got {d.height}.")
    need(d.width > 0 and d.width % 16 == 0, "data.width", f"must be a positive multiple of 16, got {d.width}.")
    need(d.batch_size >= 1, "data.batch_size", f"must be >= 1, got {d.batch_size}.")
    need(d.num_workers >= 0, "data.num_workers", f"must be >= 0, got {d.num_workers}.")
    need(d.reference_frames >= 1, "data.reference_frames", f"must be >= 1, got {d.reference_frames}.")
    for i, kind in enumerate(d.kinds):
        need(kind in DATA_KINDS, f"data.kinds[{i}]", f"must be one of {DATA_KINDS}, got {kind!r}.")
    need(cfg.stage == 1 or cfg.data_kinds == ["triplet"], "data.kinds",
         "stage 2 trains the reference stream and needs real source/target pairs: use only 'triplet'.")
    for kind, weight in d.mix.items():
        need(kind in DATA_KINDS, f"data.mix.{kind}", f"is not a data kind; use {DATA_KINDS}.")
        need(weight >= 0, f"data.mix.{kind}", f"must be >= 0, got {weight}.")
    if d.mix:
        need(sum(d.mix.values()) > 0, "data.mix", "needs at least one weight > 0.")
        need(cfg.stage == 1, "data.mix", "is a stage-1 setting (stage 2 trains on triplets only).")
    v = cfg.validation
    need(v.every >= 0, "validation.every", f"must be >= 0 (0 = no validation), got {v.every}.")
    need(not v.every or bool(v.shards), "validation.shards",
         "must list held-out shards when validation.every > 0.")
    need(v.loss_samples >= 0 and v.videos >= 0, "validation.videos", "counts must be >= 0.")
    need(v.num_inference_steps >= 1, "validation.num_inference_steps", "must be >= 1.")
    o = cfg.optim
    need(o.lr > 0, "optim.lr", f"must be > 0, got {o.lr}.")
    need(o.weight_decay >= 0, "optim.weight_decay", f"must be >= 0, got {o.weight_decay}.")
    need(0 <= o.beta1 < 1 and 0 <= o.beta2 < 1, "optim.beta1", "betas must be in [0, 1).")
    need(o.max_grad_norm >= 0, "optim.max_grad_norm", "must be >= 0 (0 disables clipping).")
    need(o.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0.")
    from diffusers.optimization import SchedulerType

    names = [s.value for s in SchedulerType]
    need(o.lr_scheduler in names, "optim.lr_scheduler", f"must be one of {names}, got {o.lr_scheduler!r}.")
    t = cfg.train
    need(t.max_steps >= 1, "train.max_steps", f"must be >= 1, got {t.max_steps}.")
    need(t.gradient_accumulation_steps >= 1, "train.gradient_accumulation_steps", "must be >= 1.")
    need(t.mixed_precision in ("no", "bf16", "fp16"), "train.mixed_precision",
         f"must be 'no', 'bf16' or 'fp16', got {t.mixed_precision!r}.")
    need(t.noise_aug_std >= 0, "train.noise_aug_std", "must be >= 0.")
    for name in ("text", "reference", "condition"):
        p = getattr(t.cfg_dropout, name)
        need(0.0 <= p <= 1.0, f"train.cfg_dropout.{name}", f"is a probability in [0, 1], got {p}.")
    need(cfg.lora.rank >= 1, "lora.rank", "must be >= 1.")
    need(0.0 < cfg.ema.decay < 1.0, "ema.decay", "must be in (0, 1).")
    need(cfg.ema.update_every >= 1, "ema.update_every", "must be >= 1.")
    out = cfg.output
    need(bool(out.dir), "output.dir", "must name a folder for checkpoints and logs.")
    need(out.checkpoint_every >= 1, "output.checkpoint_every", "must be >= 1.")
    need(out.keep_last >= 1, "output.keep_last", "must be >= 1.")
    need(out.log_every >= 1, "output.log_every", "must be >= 1.")
    need(out.export_dtype in ("fp32", "bf16", "fp16"), "output.export_dtype",
         f"must be 'fp32', 'bf16' or 'fp16', got {out.export_dtype!r}.")
    for i, name in enumerate(out.report_to):
        need(name in TRACKERS, f"output.report_to[{i}]", f"must be one of {TRACKERS}, got {name!r}.")
    if "wandb" in out.report_to:
        import importlib.util

        need(importlib.util.find_spec("wandb") is not None, "output.report_to",
             "names wandb, which is not installed: pip install wandb (and wandb login), or remove it.")
    need(bool(cfg.model.transformer_dir), "model.transformer_dir",
         "must name the transformer folder to start from (config.json + safetensors).")
    need(bool(d.shards), "data.shards", "must list at least one shard file or glob pattern.")


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Build and validate a :class:`Config`; unknown keys and bad values raise."""
    if not isinstance(data, Mapping):
        raise _fail("", f"must be a mapping at the top level, got {type(data).__name__}.")
    cfg = _build(Config, data)
    _validate(cfg)
    return cfg


def _parse_text(text: str, source: str) -> Dict[str, Any]:
    if source.endswith(".json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise TrajCrafterError(f"config file {source} is not valid JSON: {exc}") from None
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TrajCrafterError(f"config file {source} is not valid YAML: {exc}") from None
    return {} if data is None else data


def _set_dotted(data: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise _fail(dotted, "cannot override inside a non-section value.")
    node[parts[-1]] = value


def apply_overrides(data: Dict[str, Any], overrides: Sequence[str]) -> Dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML scalars/lists)."""
    import yaml

    for item in overrides:
        if "=" not in item:
            raise TrajCrafterError(f"override {item!r} must look like section.key=value.")
        key, raw = item.split("=", 1)
        _set_dotted(data, key.strip(), yaml.safe_load(raw))
    return data


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read a YAML/JSON config file, apply dotted overrides, validate strictly."""
    path = Path(path)
    if not path.is_file():
        raise TrajCrafterError(f"config file {path} does not exist; pass --config with a YAML or JSON file.")
    data = _parse_text(path.read_text(encoding="utf-8"), str(path))
    if not isinstance(data, dict):
        raise _fail("", f"file {path} must hold a mapping at the top level.")
    return config_from_dict(apply_overrides(data, overrides))
