"""Which model a bench evaluates: the merged model, adapter-on-base, a checkpoint, or the base.

Shared by ``engine.bench.run`` (to refuse a missing model before any process starts) and the
bench worker (to load it), so both always agree. Torch-free: it only looks at files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.errors import NotFoundError
from engine.store.campaign import Campaign
from engine.store.checkpoints import complete_checkpoints
from engine.store.merged import merged_problem

BASE_STEP = 0  # --checkpoint 0: the base model alone, the "before training" reference


@dataclass(frozen=True)
class ModelChoice:
    """A model folder, and the LoRA adapter to put on it (None: the folder alone)."""

    model_dir: Path
    adapter: Path | None
    label: str  # "merged", "adapter", "checkpoint-40" or "base", for logs and summaries


def choose_model(campaign: Campaign, run: str, checkpoint: int | None = None, *, verify: bool = True) -> ModelChoice:
    """The model ``bench run RUN [--checkpoint STEP]`` evaluates, or one clear ``NotFoundError``.

    STEP 0 is the base model alone; another STEP is that checkpoint's adapter on the base.
    Without a STEP: ``merged/`` when the run has one (it must verify against its manifest unless
    ``verify`` is False: a caller that only checks a model will be there), else ``adapter/`` on the base.
    """
    config = campaign.load_run(run)
    paths = campaign.run(run)
    base = campaign.base_model(config, source=paths.run_toml)
    if not (base / "config.json").is_file():
        raise NotFoundError(f"the base model is not a model folder (no config.json): {base}", path=paths.run_toml)
    if checkpoint == BASE_STEP:
        return ModelChoice(base, None, "base")
    if checkpoint is not None:
        found = complete_checkpoints(paths.checkpoints)
        if checkpoint not in found or not (found[checkpoint] / "adapter_config.json").is_file():
            have = ", ".join(str(step) for step in found) or "none"
            raise NotFoundError(
                f"no complete checkpoint at step {checkpoint} (complete: {have}; 0 is the base model)",
                path=paths.checkpoints,
            )
        return ModelChoice(base, found[checkpoint], f"checkpoint-{checkpoint}")
    if paths.merged.exists():
        # Never a silent fallback to the adapter: a merged/ that does not verify is an error to fix.
        problem = merged_problem(paths.merged) if verify else None
        if problem is not None:
            raise NotFoundError(
                f"the merged model does not verify ({problem}): merge again with 'tunedeck merge {run}', "
                "or remove the folder to bench the adapter",
                path=paths.merged,
            )
        return ModelChoice(paths.merged, None, "merged")
    if (paths.adapter / "adapter_config.json").is_file():
        return ModelChoice(base, paths.adapter, "adapter")
    steps = ", ".join(str(step) for step in complete_checkpoints(paths.checkpoints)) or "none"
    raise NotFoundError(
        f"run {run!r} has no merged model or final adapter yet (complete checkpoints: {steps}); "
        "train it, or pass --checkpoint STEP (0 = the base model)",
        path=paths.root,
    )
