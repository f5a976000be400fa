"""Benchmark: steps/s of DPO, ORPO and GRPO with tunedeck's callbacks against the bare TRL trainer.

    python tests/perf/bench_trl_overhead.py [--steps 60] [--grpo-steps 50] [--rounds 3] [--json]

Each method's trainer is built exactly as the worker builds it (prepare_run on a temporary
campaign with the tiny Qwen2 model, engine.worker.methods.build_trainer, LoRA r=8 on q/k/v/o), once
with tunedeck's callbacks (MetricsCallback + LifecycleCallback + StopRequestCallback, writing to a
real run folder) and once with none: the bare TRL trainer. A fresh model per run, same seed and
data. After an untimed warm-up, each round runs both variants of every method in a shuffled order
and times ``trainer.train()``; medians and the median paired ratio are printed (goal: overhead <= 1%).

The eval-reward callback's cost: a GRPO run with ``[method.eval] every_steps = 50`` on 16 held-out
rows, its generation + scoring time as a share of the run's training time (and of one step).

Not a pytest test: CI does not run it. Identical runs vary by about ±20% on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import engine.worker  # noqa: E402,F401  (quiet, offline environment first)
from engine.store.campaign import Campaign  # noqa: E402
from tests.helpers import grpo_rows, preference_rows, write_jsonl  # noqa: E402

TRAIN = "[train]\nlearning_rate = 5e-3\nbatch_size = 8\nmax_steps = {steps}\nlogging_steps = 10\nsave_steps = 100000\n"
HEADS = {
    "dpo": 'dataset = "datasets/pref.jsonl"\nmethod = "dpo"\n',
    "orpo": 'dataset = "datasets/pref.jsonl"\nmethod = "orpo"\n',
    "grpo": 'dataset = "datasets/grpo.jsonl"\n[method]\nname = "grpo"\nmax_completion_length = 8\n'
    '[[method.rewards]]\nfn = "exact_match"\n[[method.rewards]]\nfn = "length"\nmax_chars = 9\n',
}
EVAL = 'eval_dataset = "datasets/heldout.jsonl"\n'


def make_campaign(root: Path) -> Campaign:
    from engine.worker.tinymodel import build_tiny_model

    base = build_tiny_model(root / "tiny")
    camp = Campaign.create(root / "campaign", "bench", base=str(base))
    write_jsonl(camp.root / "datasets" / "pref.jsonl", preference_rows(400, seed=1))
    write_jsonl(camp.root / "datasets" / "grpo.jsonl", grpo_rows(400, seed=1))
    write_jsonl(camp.root / "datasets" / "heldout.jsonl", grpo_rows(16, seed=2))
    return camp


def build(camp: Campaign, name: str, text: str, *, with_callbacks: bool) -> tuple[Any, Any]:
    """The worker's trainer for run ``name`` (tunedeck callbacks or none) and its eval callback, if any."""
    from transformers import PrinterCallback, set_seed

    from engine.runs.launch import prepare_run
    from engine.worker.callbacks import LifecycleCallback, MetricsCallback, StopRequestCallback
    from engine.worker.eval_rewards import EvalRewardCallback
    from engine.worker.methods import build_trainer
    from engine.worker.models import attach_lora, load_base_model, load_tokenizer

    run_dir = camp.run(name).root
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    (run_dir / "run.toml").write_text(text)
    prepared = prepare_run(camp, name)
    set_seed(0)
    tokenizer = load_tokenizer(prepared.base)
    model = attach_lora(load_base_model(prepared.base, prepared.config, "fp32"), prepared.config)
    paths = prepared.paths
    callbacks = [
        MetricsCallback(paths.metrics),
        LifecycleCallback(paths.events),
        StopRequestCallback(paths.stop_request),
    ]
    trainer = build_trainer(prepared, "fp32", model, tokenizer, callbacks if with_callbacks else [])
    trainer.remove_callback(PrinterCallback)
    evals = [c for c in trainer.callback_handler.callbacks if isinstance(c, EvalRewardCallback)]
    return trainer, evals[0] if evals else None


def timed(camp: Campaign, method: str, steps: int, *, with_callbacks: bool) -> float:
    """Steps per second of one run's ``trainer.train()``."""
    text = HEADS[method] + TRAIN.format(steps=steps)
    trainer, _ = build(camp, f"{method}-{'td' if with_callbacks else 'bare'}", text, with_callbacks=with_callbacks)
    started = time.perf_counter()
    trainer.train()
    return steps / (time.perf_counter() - started)


def eval_cost(camp: Campaign, steps: int) -> dict[str, float]:
    """The eval-reward callback's share of a GRPO run's time at every 50 steps."""
    text = HEADS["grpo"].replace('"datasets/grpo.jsonl"\n', '"datasets/grpo.jsonl"\n' + EVAL, 1)
    text += "[method.eval]\nevery_steps = 50\n" + TRAIN.format(steps=steps)
    trainer, callback = build(camp, "grpo-eval", text, with_callbacks=True)
    started = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - started
    evals = 1 + steps // 50  # the baseline before step 1, then every 50 steps
    step_s = (total - callback.seconds) / steps
    return {
        "eval_seconds": round(callback.seconds, 3),
        "evaluations": evals,
        "seconds_per_evaluation": round(callback.seconds / evals, 3),
        "train_seconds": round(total - callback.seconds, 3),
        "cost_percent": round(100 * callback.seconds / (total - callback.seconds), 2),
        "cost_percent_of_50_steps": round(100 * (callback.seconds / evals) / (50 * step_s), 2),
    }


def hooks_cost(camp: Campaign, steps: int = 2000, logging_steps: int = 10) -> float:
    """Microseconds per step of the three callbacks' hooks, called as the Trainer calls them (no training)."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from engine.worker.callbacks import LifecycleCallback, MetricsCallback, StopRequestCallback

    paths = camp.run("hooks")
    paths.root.mkdir(parents=True, exist_ok=True)
    parts = [MetricsCallback(paths.metrics), LifecycleCallback(paths.events), StopRequestCallback(paths.stop_request)]
    args = TrainingArguments(output_dir=str(paths.checkpoints), report_to="none", use_cpu=True)
    state, control = TrainerState(), TrainerControl()
    logs = {f"rewards/fn{i}/mean": 0.5 for i in range(30)} | {"loss": 1.0, "num_input_tokens_seen": 100}
    for part in parts:
        part.on_train_begin(args, state, control)
    started = time.perf_counter()
    for step in range(1, steps + 1):
        state.global_step = step
        for part in parts:
            part.on_step_end(args, state, control)
        if step % logging_steps == 0:
            for part in parts:
                part.on_log(args, state, control, logs=dict(logs))
    seconds = time.perf_counter() - started
    for part in parts:
        part.on_train_end(args, state, control)
    return seconds / steps * 1e6


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(prog="bench_trl_overhead")
    parser.add_argument("--steps", type=int, default=60, help="steps per DPO/ORPO run")
    parser.add_argument("--grpo-steps", type=int, default=50)
    parser.add_argument("--eval-steps", type=int, default=100, help="steps of the eval-cost GRPO run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="bench-trl-"))
    try:
        camp = make_campaign(root)
        steps = {"dpo": args.steps, "orpo": args.steps, "grpo": args.grpo_steps}
        for method in steps:  # warm-up, untimed
            timed(camp, method, 5, with_callbacks=True)
        runs: dict[str, dict[str, list[float]]] = {m: {"bare": [], "tunedeck": []} for m in steps}
        for round_index in range(args.rounds):
            order = [(m, v) for m in steps for v in (False, True)]
            random.Random(round_index).shuffle(order)
            for method, with_callbacks in order:
                rate = timed(camp, method, steps[method], with_callbacks=with_callbacks)
                runs[method]["tunedeck" if with_callbacks else "bare"].append(rate)
                print(
                    f"round {round_index + 1} {method} {'tunedeck' if with_callbacks else 'bare'}: {rate:.2f} steps/s",
                    file=sys.stderr,
                )
        result: dict[str, Any] = {"methods": {}}
        for method, rates in runs.items():
            paired = [t / b for t, b in zip(rates["tunedeck"], rates["bare"], strict=True)]
            bare, tuned = statistics.median(rates["bare"]), statistics.median(rates["tunedeck"])
            result["methods"][method] = {
                "bare_steps_per_s": round(bare, 3),
                "tunedeck_steps_per_s": round(tuned, 3),
                "ratio": round(tuned / bare, 4),
                "median_paired_ratio": round(statistics.median(paired), 4),
                "overhead_percent": round((1 - statistics.median(paired)) * 100, 2),
            }
        result["eval_callback"] = eval_cost(camp, args.eval_steps)
        micros = hooks_cost(camp)
        result["hooks_us_per_step"] = round(micros, 1)
        for figures in result["methods"].values():
            figures["hooks_percent_of_step"] = round(100 * micros * 1e-6 * figures["bare_steps_per_s"], 4)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{'method':<6} {'bare steps/s':>13} {'tunedeck steps/s':>17} {'ratio':>7} {'paired':>7} {'overhead':>9}")
    for method, figures in result["methods"].items():
        print(
            f"{method:<6} {figures['bare_steps_per_s']:>13.3f} {figures['tunedeck_steps_per_s']:>17.3f} "
            f"{figures['ratio']:>7.4f} {figures['median_paired_ratio']:>7.4f} {figures['overhead_percent']:>8.2f}%"
        )
    shares = ", ".join(f"{m} {f['hooks_percent_of_step']}%" for m, f in result["methods"].items())
    print(f"callbacks' hooks alone: {result['hooks_us_per_step']} us per step = {shares} of a bare step")
    cost = result["eval_callback"]
    print(
        f"eval callback (GRPO, every 50 steps, 16 held-out rows): {cost['seconds_per_evaluation']} s per evaluation, "
        f"{cost['cost_percent_of_50_steps']}% of 50 steps' time; {cost['cost_percent']}% over the whole run "
        f"({cost['evaluations']} evaluations incl. the step-0 baseline)"
    )


if __name__ == "__main__":
    main()
