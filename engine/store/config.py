"""campaign.toml and run.toml: parsed with tomllib, validated with pydantic.

Every validation failure becomes one ``ConfigError`` naming the file, the line of the
offending key (when it can be found) and the dotted field.
"""

from __future__ import annotations

import datetime
import re
import tomllib
import urllib.parse
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.errors import ConfigError, RunNameError
from engine.store.method_config import MethodField, SftMethod, _raise_at, refuse_levers
from engine.store.names import validate_run_name
from engine.store.toml_positions import line_of
from engine.store.watch_rules import WatchRules

# The schedulers transformers' Trainer accepts by name (``SchedulerType``).
LrScheduler = Literal[
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant",
    "constant_with_warmup",
    "inverse_sqrt",
    "cosine_with_min_lr",
    "warmup_stable_decay",
]


class _Strict(BaseModel):
    # strict: `batch_size = "4"` or `load_in_4bit = "yes"` is a mistake to name, not a value to guess.
    # Every float refuses inf and NaN: none of these settings means anything infinite.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, strict=True, allow_inf_nan=False)


# transformers' OptimizerNames (5.23), copied because the store never imports transformers;
# tests/test_config_limits.py checks the copy against the installed library.
OPTIMIZERS = (
    "adamw_torch", "adamw_torch_fused", "adamw_torch_xla", "adamw_torch_npu_fused", "adafactor",
    "adamw_anyprecision", "adamw_torch_4bit", "adamw_torch_8bit", "ademamix", "sgd", "adagrad",
    "adamw_bnb_8bit", "adamw_8bit", "ademamix_8bit", "lion_8bit", "lion_32bit", "paged_adamw_32bit",
    "paged_adamw_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit", "paged_lion_32bit", "paged_lion_8bit",
    "rmsprop", "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit", "galore_adamw", "galore_adamw_8bit",
    "galore_adafactor", "galore_adamw_layerwise", "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise",
    "lomo", "adalomo", "grokadamw", "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd",
    "apollo_adamw", "apollo_adamw_layerwise", "stable_adamw",
)  # fmt: skip
# Limits "beyond reason": past them a run is a typo that would exhaust memory or overflow, not a choice.
MAX_LORA_RANK = 4096
MAX_REPLICATE_FACTOR = 1000.0
MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit
MAX_JUDGE_WEIGHT = 1e6
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EngineSettings(_Strict):
    """[engine] in campaign.toml: how the service runs jobs and samples the GPU."""

    max_concurrent_jobs: int = Field(1, ge=1, description="GPU jobs at once; the rest wait in the queue.")
    sample_interval_s: float = Field(1.0, gt=0.05, le=60.0, description="NVML sampling interval.")


class GateConfig(_Strict):
    """[gate] in campaign.toml: what a run must satisfy before it may be promoted."""

    anchors: list[str] = Field(default_factory=list, description="Task ids that must pass (in any bench).")
    max_lost: int | None = Field(None, ge=0, description="Rows lost against production, at most.")
    min_pass_rate: dict[str, float] = Field(default_factory=dict, description="Per bench, 0..1.")

    @field_validator("min_pass_rate")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        for bench, rate in value.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{bench}: a pass rate is between 0 and 1 (got {rate})")
        return value


class JudgeConfig(_Strict):
    """[judge] in campaign.toml: category weights of judged benches (Foundry: voice 25%, ...).

    Weights are relative (25/20/20/20/15 and 0.25/0.2/... mean the same); tunedeck computes
    each row's overall from them and never trusts a judge's own overall.
    """

    weights: dict[str, float] = Field(min_length=1)
    # The judge itself, for `tunedeck bench judge` (any OpenAI-compatible chat-completions server).
    # All optional: a campaign that only imports judged rows declares weights alone.
    base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8080/v1 (…/chat/completions is appended).")
    model: str | None = Field(None, min_length=1, description="The judge model name the server expects.")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key.")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(2048, gt=0, le=1_000_000)
    rejudge_max_tokens: int | None = Field(None, gt=0, le=1_000_000, description="Default: 2 x max_tokens.")
    rubric: str | None = Field(None, description="Rubric file inside the campaign (default: tunedeck's own).")
    concurrency: int = Field(4, ge=1, le=256)
    timeout_s: float = Field(120.0, gt=0, le=3600)
    retries: int = Field(4, ge=0, le=20, description="Retries of a 429 / 5xx / timeout before a judge error.")
    backoff_s: float = Field(1.0, ge=0, le=600, description="First retry wait, doubled each time (Retry-After wins).")
    price_input_per_mtok: float | None = Field(None, ge=0, description="USD per million input tokens.")
    price_output_per_mtok: float | None = Field(None, ge=0, description="USD per million output tokens.")

    @field_validator("weights")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for name, weight in value.items():
            if not name.strip():
                raise ValueError("a component needs a name")
            if not 0 < weight <= MAX_JUDGE_WEIGHT:  # relative weights: past this, a typo that overflows the overall
                raise ValueError(f"{name}: a weight must be positive, at most {MAX_JUDGE_WEIGHT:g} (got {weight})")
        return value

    @field_validator("base_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _no_secret_in_the_file(self) -> JudgeConfig:
        # Refused without echoing the value: it may be the key itself, which must reach no log.
        if self.api_key_env is not None and not _ENV_NAME.match(self.api_key_env):
            _raise_at(
                ("api_key_env",), "names the environment variable holding the key (letters, digits, _), not the key"
            )
        url = self.base_url
        if url is not None and (not re.match(r"^https?://[^/?#]", url) or re.search(r"\s", url)):
            _raise_at(("base_url",), "an http:// or https:// address with a host, e.g. http://127.0.0.1:8080/v1")
        if url is not None and "@" in urllib.parse.urlsplit(url).netloc:
            _raise_at(("base_url",), "holds credentials (user:key@): they would be written to logs; use api_key_env")
        if self.rejudge_max_tokens is not None and self.rejudge_max_tokens <= self.max_tokens:
            _raise_at(
                ("rejudge_max_tokens",), f"a re-judge of a cut answer needs more than max_tokens ({self.max_tokens})"
            )
        return self

    @field_validator("rubric")
    @classmethod
    def _rubric_inside(cls, value: str | None) -> str | None:
        # Read from inside the campaign only, like `tree`: its hash is recorded with every score.
        if value is not None and (not value or value.startswith(("/", "~")) or ".." in Path(value).parts):
            raise ValueError('a file inside the campaign folder, e.g. rubric = "rubric.md"')
        return value


class ModelsSettings(_Strict):
    """[models] in campaign.toml: model folders tunedeck builds itself, offline, when they are missing.

    ``tiny`` lists folders (inside the campaign) that hold tunedeck's tiny Qwen2-shaped model
    (engine/worker/tinymodel.py): a run whose base is one of them is accepted before the folder
    exists, and its training worker builds it first. Any other base must exist.
    """

    tiny: list[str] = Field(default_factory=list, description="Folders built as the tiny model on first use.")

    @field_validator("tiny")
    @classmethod
    def _folders_inside(cls, value: list[str]) -> list[str]:
        for folder in value:
            # Built and written by tunedeck: only inside the campaign, never over a path outside it.
            if not folder or folder.startswith(("/", "~")) or ".." in Path(folder).parts or Path(folder) == Path("."):
                raise ValueError(f'{folder!r}: a folder inside the campaign, e.g. tiny = ["models/tiny-qwen2"]')
        if len({Path(folder) for folder in value}) != len(value):
            raise ValueError("a folder is listed twice")
        return value


class CampaignConfig(_Strict):
    """campaign.toml: only ``name`` is required."""

    name: str = Field(min_length=1, description="The campaign's display name.")
    description: str | None = None
    base: str | None = Field(None, description="Default base model folder for runs (relative to the campaign).")
    gate: GateConfig | None = None
    watch: WatchRules = Field(default_factory=list)
    judge: JudgeConfig | None = None
    tree: str | None = Field(None, description="The decision tree file (tree.toml), relative to the campaign.")
    engine: EngineSettings = Field(default_factory=lambda: EngineSettings())
    models: ModelsSettings = Field(default_factory=lambda: ModelsSettings())

    @field_validator("tree")
    @classmethod
    def _tree_inside(cls, value: str | None) -> str | None:
        # The tree is read from inside the campaign only: no absolute path, no way up and out.
        if value is not None and (not value or value.startswith(("/", "~")) or ".." in Path(value).parts):
            raise ValueError('a file inside the campaign folder, e.g. tree = "tree.toml"')
        return value

    # Fields a campaign.toml may carry from older write-ups, refused with a reason instead of
    # "unknown field": tunedeck would otherwise accept them and never read them.
    refused_fields: ClassVar[dict[str, str]] = {
        "production_run": "not read: production is the run named in production.json (written by promote); "
        "remove this line",
        "benches": "not supported yet: tunedeck has no per-bench settings; remove this section",
        "judge.api_key": "refused: a key written in a file ends up in backups and logs; put it in an environment "
        "variable and name that with api_key_env",
    }


class LoraSettings(_Strict):
    """The LoRA adapter's shape."""

    r: int = Field(8, gt=0, le=MAX_LORA_RANK, description="Rank.")
    alpha: float = Field(16.0, gt=0, description="Scaling numerator (lora_alpha).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1)


class TrainSettings(_Strict):
    """Optimiser, schedule, batch and checkpoint settings (HF TrainingArguments, renamed plainly)."""

    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: LrScheduler = "linear"
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0)
    warmup_steps: int = Field(0, ge=0)
    epochs: float = Field(1.0, gt=0, le=10_000)
    max_steps: int | None = Field(None, gt=0, le=10**9, description="Overrides epochs when set.")
    batch_size: int = Field(8, gt=0, le=65_536, description="Per device.")
    grad_accum: int = Field(1, gt=0, le=65_536)
    max_length: int = Field(1024, gt=1, le=1_048_576, description="Rows longer than this are truncated.")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    weight_decay: float = Field(0.0, ge=0.0)
    max_grad_norm: float = Field(1.0, gt=0)
    optim: str = Field("adamw_torch", description="A transformers optimizer name (OptimizerNames).")
    logging_steps: int = Field(10, gt=0)
    save_steps: int | None = Field(100, gt=0, description="Checkpoint every N steps; none when unset.")
    save_total_limit: int | None = Field(None, gt=0)
    eval_steps: int | None = Field(None, gt=0, description="Defaults to logging_steps when an eval split exists.")
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    load_in_4bit: bool = Field(False, description="QLoRA: needs CUDA and bitsandbytes.")
    activation_checkpointing: bool = False
    gpus: int = Field(1, ge=1, description="More than one launches the worker under torchrun.")

    @field_validator("optim")
    @classmethod
    def _known_optimizer(cls, value: str) -> str:
        if value not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {value!r}: one of transformers' names, e.g. adamw_torch, adafactor, sgd"
            )
        return value


class WeightRule(_Strict):
    """A row matches when every condition given holds; the first matching rule sets the weight."""

    row_class: str | None = Field(None, alias="class")
    task_id: str | None = Field(None, description="Exact id or a glob such as 'HumanEval/*'.")
    min_tokens: int | None = Field(None, ge=0, description="Completion tokens greater than this.")
    max_tokens: int | None = Field(None, ge=0, description="Completion tokens at most this.")
    weight: float = Field(ge=0.0)


class WeightPolicy(_Strict):
    """Per-row loss weights: a row's own ``weight`` field wins, then rules, then the default."""

    default: float = Field(1.0, ge=0.0)
    rules: list[WeightRule] = Field(default_factory=list)


class ReplicateRule(_Strict):
    """Oversample matching rows: each appears ``factor`` times (fractions sampled, seeded)."""

    row_class: str | None = Field(None, alias="class")
    task_id: str | None = None
    factor: float = Field(gt=0.0, le=MAX_REPLICATE_FACTOR)

    @model_validator(mode="after")
    def _needs_a_selector(self) -> ReplicateRule:
        if self.row_class is None and self.task_id is None:
            raise ValueError("give 'class' or 'task_id' to say which rows to replicate")
        return self


class KlSettings(_Strict):
    """KL divergence to the base model (adapter disabled), added to the loss with weight λ."""

    lam: float = Field(0.0, ge=0.0, alias="lambda")


class CostSettings(_Strict):
    """``[cost]`` of a run.toml: what the run cost, as declared by a person (tunedeck measures none of it)."""

    gpu_hours: float | None = Field(None, ge=0, le=1e7, description="GPU hours used (all GPUs together).")
    training_usd: float | None = Field(None, ge=0, le=1e9, description="Dollars spent on training compute.")
    eval_usd: float | None = Field(None, ge=0, le=1e9, description="Dollars spent on evaluation (judges included).")
    data_usd: float | None = Field(None, ge=0, le=1e9, description="Dollars spent generating the training data.")
    note: str | None = Field(None, max_length=500, description="Where the figures come from.")


class LedgerSettings(_Strict):
    """``[ledger]`` of a run.toml: what a write-up records about a run that tunedeck did not train itself.

    Quoted, never computed: tunedeck's own numbers come from the run's files and bench rows.
    """

    date: datetime.date | None = Field(None, description="When the run was trained or scored (a TOML date).")
    dataset: str | None = Field(None, max_length=200, description="The dataset's name or version, e.g. 'v4'.")
    pairs: int | None = Field(None, ge=0, le=10**9, description="Training rows (preference pairs) it was trained on.")
    serving: str | None = Field(None, max_length=200, description="How the evaluated model was served.")
    reported: dict[str, float] = Field(default_factory=dict, description="Figures the write-up reports, by name.")
    notes: str | None = Field(None, max_length=2000)

    @field_validator("date", mode="before")
    @classmethod
    def _toml_date(cls, value: Any) -> Any:
        # tomllib gives a datetime for 2026-03-31T10:00:00 and a str for "2026-03-31": both are slips.
        if value is not None and (isinstance(value, datetime.datetime) or not isinstance(value, datetime.date)):
            raise ValueError("a TOML date without quotes or time, e.g. date = 2026-03-31")
        return value


class RunConfig(_Strict):
    """runs/<run>/run.toml."""

    name: str | None = None
    description: str | None = None
    # `method = "dpo"`, or a [method] table with name = "..." and that method's knobs (engine.store.method_config).
    method: MethodField = Field(default_factory=lambda: SftMethod())
    base: str | None = Field(None, description="Base model folder; defaults to the campaign's base.")
    dataset: str | None = Field(None, description="Training JSONL, relative to the campaign.")
    eval_dataset: str | None = None
    eval_fraction: float = Field(0.0, ge=0.0, lt=0.9, description="Held out from dataset when no eval_dataset.")
    parent: str | None = Field(None, description="The run this one was derived from.")
    lora: LoraSettings = Field(default_factory=lambda: LoraSettings())
    train: TrainSettings = Field(default_factory=lambda: TrainSettings())
    weights: WeightPolicy = Field(default_factory=lambda: WeightPolicy())
    replicate: list[ReplicateRule] = Field(default_factory=list)
    kl: KlSettings = Field(default_factory=lambda: KlSettings())
    imported_from: str | None = Field(None, description="Set on runs created by an import.")
    cost: CostSettings | None = Field(None, description="What the run cost (summed by status and report).")
    ledger: LedgerSettings | None = Field(None, description="A write-up's record of the run (date, data, serving).")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                validate_run_name(value)
            except RunNameError as exc:
                raise ValueError(exc.message) from None
        return value

    @model_validator(mode="after")
    def _levers_fit_the_method(self) -> RunConfig:
        refuse_levers(self)  # [weights] and [kl] are SFT-only: refused at their key for a TRL method
        return self


Model = TypeVar("Model", bound=BaseModel)

_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)")


def parse_toml(path: Path, text: str) -> dict[str, Any]:
    """Parse TOML text, turning a syntax error into a ``ConfigError`` with its line."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POSITION.search(message)
        line = int(match.group(1)) if match else None
        message = _TOML_POSITION.sub("", message).strip()
        raise ConfigError(f"not valid TOML ({message})", path=path, line=line) from None


def validate_toml(path: Path, text: str, model: type[Model]) -> Model:
    """Parse and validate TOML text against ``model``; the first problem becomes a ``ConfigError``."""
    data = parse_toml(path, text)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        field = ".".join(str(p) for p in loc) or None
        if error["type"] == "extra_forbidden":
            message = getattr(model, "refused_fields", {}).get(field, "unknown field")
        elif error["type"] == "missing":
            message = "required field is missing"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            if "input" in error and not isinstance(error["input"], dict | list):
                message += f" (got {error['input']!r})"
        raise ConfigError(message, path=path, line=line_of(text, loc), field=field) from None


def load_toml(path: Path, model: type[Model]) -> Model:
    """Read ``path`` and validate it against ``model``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", path=path) from None
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=path) from None
    except OSError as exc:  # a folder where the file belongs, no permission, ...
        raise ConfigError(f"cannot read ({exc.strerror})", path=path) from None
    return validate_toml(path, text, model)
