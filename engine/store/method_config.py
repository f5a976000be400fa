"""The ``method`` of a run.toml and its ``[method]`` table: one settings model per training method.

``method = "dpo"`` takes every default; a ``[method]`` table names the method with ``name`` and sets
its knobs (``[method]`` / ``name = "grpo"`` / ``num_generations = 4``). Each method accepts only its
own knobs, so a key of another method, or a typo, is an error at ``method.<key>``. GRPO's reward
functions are ``[[method.rewards]]`` tables and its held-out reward eval is ``[method.eval]``.

The store knows the reward registry's *names and options* (so a run is refused before a worker
starts); the functions themselves live in engine.worker.rewards.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapSerializer,
    WrapValidator,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

METHODS = ("sft", "dpo", "orpo", "grpo", "kto", "cpo")
# Methods trained on preference rows (prompt + chosen + rejected).
PREFERENCE_METHODS = frozenset({"dpo", "orpo", "kto", "cpo"})
DPO_LOSSES = (
    "sigmoid", "hinge", "ipo", "exo_pair", "nca_pair", "robust", "bco_pair", "sppo_hard", "aot",
    "aot_unpaired", "apo_zero", "apo_down", "discopop", "sft", "sigmoid_norm",
)  # fmt: skip
_USER_REWARD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$")
_LOG_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# Past these, a knob is a typo that overflows a loss or a reward to infinity, not a choice.
MAX_LOSS_WEIGHT = 1e6
# The keywords a user's reward function gets from tunedeck itself (engine.worker.rewards.user).
RESERVED_COLUMNS = frozenset({"completions", "prompts"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True, allow_inf_nan=False)


class SftMethod(_Strict):
    """Supervised fine-tuning: tunedeck's own token-weighted loss (no knobs here; see [train], [weights], [kl])."""

    name: Literal["sft"] = "sft"


class DpoMethod(_Strict):
    """TRL's DPOTrainer. The default loss mixes sigmoid DPO with SFT on the chosen answer: plain DPO on
    near-miss pairs lowered the chosen answer's likelihood and wiped out greedy accuracy (0.067 -> 0.005)."""

    name: Literal["dpo"] = "dpo"
    beta: float = Field(0.1, gt=0, le=100)
    loss_type: list[Literal[DPO_LOSSES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["sigmoid", "sft"], min_length=1
    )
    loss_weights: list[Annotated[float, Field(ge=0, le=MAX_LOSS_WEIGHT)]] | None = Field(
        None, description="One weight per loss_type entry."
    )
    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5)

    @field_validator("loss_type", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _weights_match(self) -> DpoMethod:
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            raise ValueError(f"loss_weights has {len(self.loss_weights)} entries for {len(self.loss_type)} loss_type")
        if self.loss_weights is not None and not any(self.loss_weights):
            _raise_at(("loss_weights",), "every weight is 0: the loss would be 0 and nothing would train")
        return self


class OrpoMethod(_Strict):
    """TRL's ORPOTrainer: NLL on the chosen answer plus ``beta`` times the odds-ratio loss."""

    name: Literal["orpo"] = "orpo"
    beta: float = Field(0.1, gt=0, le=100)
    max_completion_length: int | None = Field(None, gt=0, le=1_048_576)


class CpoMethod(_Strict):
    """TRL's CPOTrainer (SimPO with ``loss_type = "simpo"``)."""

    name: Literal["cpo"] = "cpo"
    beta: float = Field(0.1, gt=0, le=100)
    loss_type: Literal["sigmoid", "hinge", "ipo", "simpo", "alphapo"] = "sigmoid"
    cpo_alpha: float = Field(1.0, ge=0, le=MAX_LOSS_WEIGHT)
    simpo_gamma: float = Field(0.5, ge=0, le=MAX_LOSS_WEIGHT)
    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5)


class KtoMethod(_Strict):
    """TRL's KTOTrainer on preference rows, unpaired (chosen -> desirable, rejected -> undesirable)."""

    name: Literal["kto"] = "kto"
    beta: float = Field(0.1, gt=0, le=100)
    loss_type: Literal["kto", "apo_zero_unpaired"] = "kto"
    desirable_weight: float = Field(1.0, gt=0, le=MAX_LOSS_WEIGHT)
    undesirable_weight: float = Field(1.0, gt=0, le=MAX_LOSS_WEIGHT)


class RewardSpec(_Strict):
    """One ``[[method.rewards]]`` entry: a registry function (or ``"module:function"``) and its options.

    ``column`` is the row field the function compares with (defaults per function: ``answer``,
    ``fields``, ``tests``); the other options apply to the functions named in REWARD_OPTIONS.
    """

    fn: str = Field(min_length=1, description="A registry name, or 'module:function' in the campaign folder.")
    name: str | None = Field(None, description="The name logged as rewards/<name>/mean; defaults to fn.")
    weight: float = Field(
        1.0, ge=-MAX_LOSS_WEIGHT, le=MAX_LOSS_WEIGHT, description="Its weight in the combined reward (< 0: a penalty)."
    )
    column: str | None = Field(None, min_length=1)
    columns: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, description="Row fields a user's function needs."
    )
    case_sensitive: bool | None = None
    partial: bool | None = None
    entry_point_column: str | None = None
    timeout_s: float | None = Field(None, gt=0, le=600)
    min_chars: int | None = Field(None, ge=0)
    max_chars: int | None = Field(None, gt=0)
    pattern: str | None = None
    full_match: bool | None = None

    @field_validator("fn")
    @classmethod
    def _known(cls, value: str) -> str:
        if ":" in value:
            if not _USER_REWARD.match(value):
                raise ValueError(f"{value!r}: a user's reward is 'module:function', e.g. 'my_rewards:extraction'")
        elif value not in REWARD_OPTIONS:
            raise ValueError(f"unknown reward {value!r}: one of {', '.join(REWARD_OPTIONS)}, or 'module:function'")
        return value

    @field_validator("columns")
    @classmethod
    def _not_reserved(cls, value: list[str] | None) -> list[str] | None:
        taken = sorted(RESERVED_COLUMNS.intersection(value or ()))
        if taken:
            raise ValueError(f"{', '.join(taken)}: tunedeck passes these itself; rename the row field")
        return value

    @field_validator("name")
    @classmethod
    def _loggable(cls, value: str | None) -> str | None:
        if value is not None and not _LOG_NAME.match(value):
            raise ValueError(f"{value!r}: letters, digits, '_', '-' and '.' only (it becomes rewards/<name>/mean)")
        return value

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _options_apply(self) -> RewardSpec:
        allowed = REWARD_OPTIONS.get(self.fn, USER_OPTIONS)
        given = [key for key in _OPTION_KEYS if getattr(self, key) is not None]
        for key in given:
            if key not in allowed:
                _raise_at((key,), f"not an option of {self.fn} (its options: {', '.join(allowed) or 'none'})")
        if self.fn == "format" and self.pattern is None:
            raise ValueError("the format reward needs pattern = a regular expression")
        if self.min_chars is not None and self.max_chars is not None and self.min_chars > self.max_chars:
            raise ValueError(f"min_chars ({self.min_chars}) is above max_chars ({self.max_chars})")
        return self

    @property
    def log_name(self) -> str:
        """The name TRL logs it under (``rewards/<log_name>/mean``)."""
        return self.name or self.fn.replace(":", ".")

    def needed_columns(self) -> list[str]:
        """The row fields this function reads."""
        if ":" in self.fn:
            return list(self.columns or [])
        default = DEFAULT_COLUMNS.get(self.fn)
        wanted = [self.column or default] if default else []
        return [c for c in (*wanted, self.entry_point_column) if c]


# Each registry function's options (beyond fn, name, weight) and the column it reads by default.
REWARD_OPTIONS: dict[str, tuple[str, ...]] = {
    "exact_match": ("column",),
    "contains": ("column", "case_sensitive"),
    "python_tests": ("column", "entry_point_column", "timeout_s"),
    "json_fields": ("column", "partial"),
    "length": ("min_chars", "max_chars"),
    "format": ("pattern", "full_match"),
}
USER_OPTIONS = ("columns",)
DEFAULT_COLUMNS = {"exact_match": "answer", "contains": "answer", "python_tests": "tests", "json_fields": "fields"}
_OPTION_KEYS = (
    "column", "columns", "case_sensitive", "partial", "entry_point_column", "timeout_s",
    "min_chars", "max_chars", "pattern", "full_match",
)  # fmt: skip


class EvalRewardSettings(_Strict):
    """``[method.eval]``: every ``every_steps`` steps, greedy completions of held-out rows are scored with the
    run's rewards and logged as ``eval/<task>`` and ``eval/mean_reward``."""

    every_steps: int | None = Field(None, gt=0, description="Defaults to [train] eval_steps, else 50.")
    max_rows: int | None = Field(None, gt=0, description="Score at most this many held-out rows (the first ones).")
    max_new_tokens: int | None = Field(None, gt=0, le=65_536, description="Defaults to max_completion_length.")


class GrpoMethod(_Strict):
    """TRL's GRPOTrainer with tunedeck's reward registry."""

    name: Literal["grpo"] = "grpo"
    rewards: list[RewardSpec] = Field(min_length=1)
    task_field: str = Field("task", min_length=1, description="The row field naming a row's task.")
    num_generations: int = Field(4, ge=2, le=1024)
    max_completion_length: int = Field(64, gt=0, le=1_048_576)
    temperature: float = Field(1.0, gt=0, le=10)
    top_p: float = Field(1.0, gt=0, le=1)
    beta: float = Field(
        0.0, ge=0, le=100, description="KL to the base model (adapter off); 0 skips the reference pass."
    )
    epsilon: float = Field(0.2, gt=0, lt=1)
    num_iterations: int = Field(1, ge=1, le=64)
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"] = "dapo"
    scale_rewards: Literal["group", "batch", "none"] = "group"
    mask_truncated_completions: bool = False
    eval: EvalRewardSettings | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> GrpoMethod:
        if not any(spec.weight for spec in self.rewards):
            _raise_at(("rewards",), "every reward has weight 0: the combined reward would always be 0")
        seen: set[str] = set()
        for spec in self.rewards:
            if spec.log_name in seen:
                raise ValueError(f"two rewards log as {spec.log_name!r}: give one of them a name")
            seen.add(spec.log_name)
        return self


_MODELS: dict[str, type[_Strict]] = {
    "sft": SftMethod,
    "dpo": DpoMethod,
    "orpo": OrpoMethod,
    "grpo": GrpoMethod,
    "kto": KtoMethod,
    "cpo": CpoMethod,
}

AnyMethod = SftMethod | DpoMethod | OrpoMethod | GrpoMethod | KtoMethod | CpoMethod


def _pick_method(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """``"dpo"`` or a table with ``name``: validated by that method's own model (so errors keep their keys)."""
    if isinstance(value, BaseModel):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise ValueError(f'a method name ({", ".join(METHODS)}) or a [method] table with name = "..."')
    name = value.get("name")
    model = _MODELS.get(name) if isinstance(name, str) else None
    if model is None:
        shown = f"unknown method {name!r}" if name is not None else 'the [method] table needs name = "..."'
        raise ValueError(f"{shown}: one of {', '.join(METHODS)}")
    return model.model_validate(value)


def _dump_method(value: Any, handler: SerializerFunctionWrapHandler) -> Any:
    """A method with nothing but its name set dumps as the name (``method = "dpo"``), as run.toml spells it."""
    if isinstance(value, BaseModel) and value.model_fields_set <= {"name"}:
        return value.name  # type: ignore[attr-defined]
    return handler(value)


# The type of RunConfig.method.
MethodField = Annotated[AnyMethod, WrapValidator(_pick_method), WrapSerializer(_dump_method)]


def refuse_levers(config: Any) -> None:
    """The [weights] and [kl] levers are tunedeck's SFT loss: refused, at their key, for a TRL method.

    ``config`` is a RunConfig (typed loosely: this module sits below engine.store.config).
    """
    method = config.method.name
    if method == "sft":
        return
    if config.weights.rules or config.weights.default != 1.0:
        key = "rules" if config.weights.rules else "default"
        _raise_at(("weights", key), f"per-row loss weights apply to sft runs only ({method} trains with TRL's loss)")
    if config.kl.lam > 0:
        hint = "use method.beta" if method in ("dpo", "grpo", "kto") else f"{method} has no reference model"
        _raise_at(("kl", "lambda"), f"applies to sft runs only ({hint})")


def _raise_at(loc: tuple[str | int, ...], message: str) -> None:
    """Fail validation at ``loc`` (relative to the model being validated), so the error names that key's line."""
    error = PydanticCustomError("tunedeck", message)
    raise ValidationError.from_exception_data("run", [InitErrorDetails(type=error, loc=loc, input={})])


def user_reward_file(campaign_root: Path, fn: str) -> tuple[Path, str]:
    """The file and function of a user's ``"module:function"`` reward, found inside the campaign folder only.

    The module is read, never run, here (the engine must not execute a campaign's code): its source must
    define the function at top level. A module outside the campaign, or reached through a symlink that
    leads out of it, is refused. Raises ``ValueError`` with the reason.
    """
    module, function = fn.split(":")
    root = campaign_root.resolve()
    relative = Path(*module.split("."))
    candidates = [root / relative.with_suffix(".py"), root / relative / "__init__.py"]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise ValueError(f"no module {module!r} in the campaign folder (looked for {relative}.py)")
    real = Path(os.path.realpath(found))
    if root not in real.parents:
        raise ValueError(f"{found.relative_to(root)} leads outside the campaign folder (-> {real}): refused")
    try:
        tree = ast.parse(real.read_text(encoding="utf-8"), filename=str(real))
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{found.relative_to(root)} is not valid Python ({exc})") from None
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    if function not in defined:
        raise ValueError(f"{found.relative_to(root)} defines no function {function!r} at top level")
    return real, function


_COLUMN_KINDS = {"json_fields": "object"}


def reward_columns(method: GrpoMethod) -> dict[str, str]:
    """Every row field the run's rewards read, with what it must hold ("text", "object" or "any").

    (``check_method_run`` adds the task field as "task": absent, or a string or an integer.)
    """
    columns: dict[str, str] = {}
    for spec in method.rewards:
        kind = "any" if ":" in spec.fn else _COLUMN_KINDS.get(spec.fn, "text")
        for column in spec.needed_columns():
            columns.setdefault(column, "text" if column == spec.entry_point_column else kind)
    return columns


def check_method_run(campaign_root: Path, config: Any, source: Path | None) -> dict[str, str]:
    """Checks of a run's [method] that need the campaign folder (``config`` is a RunConfig).

    Returns the row fields a GRPO run's rewards read (empty for other methods); raises ``ConfigError``.
    """
    from engine.errors import ConfigError

    method = config.method
    if not isinstance(method, GrpoMethod):
        return {}
    for index, spec in enumerate(method.rewards):
        if ":" in spec.fn:
            try:
                user_reward_file(campaign_root, spec.fn)
            except ValueError as exc:
                raise ConfigError(str(exc), path=source, field=f"method.rewards.{index}.fn") from None
    completions = config.train.batch_size * config.train.grad_accum * config.train.gpus
    if completions % method.num_generations:
        raise ConfigError(
            f"batch_size x grad_accum x gpus = {completions} completions per generation round, which must be a "
            f"multiple of method.num_generations ({method.num_generations})",
            path=source,
            field="train.batch_size",
        )
    # The task field names a metric (task_reward/<task>, eval/<task>): optional, but a name when given.
    return {method.task_field: "task", **reward_columns(method)}
