"""Writes the V4.1 scenario fixtures (trainer_state.json files) next to this script.

Run it once after changing a scenario: ``.venv/bin/python tests/data/decide/make_trainer_states.py``.
Each file is a GRPO trainer_state.json as TRL writes it: a train log every 10 steps and an eval
log (``eval/mean_reward`` and the per-task ``eval/<task>`` of the handoff's EvalRewardCallback) at
the same steps, as separate log_history entries.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TASKS = ("extraction", "sql_qa", "insights", "push")


def ramp(step: int, start: float, end: float, last: int, plateau_from: int | None = None) -> float:
    """A value rising linearly from ``start`` at step 0 to ``end`` at ``last`` (flat after ``plateau_from``)."""
    x = min(step, plateau_from or last) / (plateau_from or last)
    # A little noise, well under any plateau's min_delta; none at the last step, so it reads as written.
    wobble = 0.0 if step == last else 0.001 * ((step // 10) % 3 - 1)
    return round(start + (end - start) * x + wobble, 4)


def state(
    eval_end: float | None, tasks: dict[str, float], *, last: int = 600, plateau_from: int | None = None
) -> dict[str, Any]:
    history: list[dict[str, Any]] = []
    for step in range(10, last + 1, 10):
        history.append({
            "epoch": round(step / 740, 4), "step": step, "loss": 0.01, "grad_norm": 0.12, "learning_rate": 5e-6,
            "reward": ramp(step, 0.3, eval_end or 0.4, last, plateau_from), "frac_reward_zero_std": 0.1,
            "completions/mean_length": 220,
        })  # fmt: skip
        evals: dict[str, Any] = {"step": step, "epoch": round(step / 740, 4)}
        if eval_end is not None:
            evals["eval/mean_reward"] = ramp(step, 0.36, eval_end, last, plateau_from)
        for task, end in tasks.items():
            evals[f"eval/{task}"] = ramp(step, 0.17 if task == "extraction" else 0.3, end, last, plateau_from)
        if len(evals) > 2:
            history.append(evals)
    history.append({"step": last, "train_runtime": 3600.0, "train_loss": 0.01})
    return {"global_step": last, "max_steps": 600, "log_history": history}


SCENARIOS = {
    # eval 0.58 at step 600: past the 0.55 target.
    "scenario_a": state(0.58, {"extraction": 0.45, "sql_qa": 0.55, "insights": 0.6, "push": 0.7}),
    # V4 again: flat at ~0.476 from step 130, stopped at 200 by the eval-plateau rule; extraction ~0.17.
    "scenario_b": state(
        0.476, {"extraction": 0.17, "sql_qa": 0.5, "insights": 0.5, "push": 0.6}, last=200, plateau_from=130
    ),
    # eval improved to 0.52; one task lags far behind the others.
    "scenario_c_extraction": state(0.52, {"extraction": 0.21, "sql_qa": 0.45, "insights": 0.5, "push": 0.6}),
    "scenario_c_sql_qa": state(0.53, {"extraction": 0.4, "sql_qa": 0.15, "insights": 0.45, "push": 0.6}),
    "scenario_c_insights": state(0.51, {"extraction": 0.38, "sql_qa": 0.33, "insights": 0.14, "push": 0.62}),
    # Between the bands: best 0.495 is neither "at V4's 0.476" (<= 0.49) nor an improvement (>= 0.50).
    "ambiguous": state(0.495, {"extraction": 0.3, "sql_qa": 0.4, "insights": 0.45, "push": 0.5}),
    # No EvalRewardCallback: train logs only.
    "no_eval": state(None, {}),
    # eval improved, but no per-task breakdown was logged.
    "no_tasks": state(0.52, {}),
}

if __name__ == "__main__":
    for name, content in SCENARIOS.items():
        (HERE / f"{name}.json").write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
