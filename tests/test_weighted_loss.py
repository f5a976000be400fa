"""The weighted loss against HF's own, weight policies, replication, and gradient accumulation."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, PrinterCallback, Trainer, TrainingArguments

from engine.demo.reverse_task import reverse_rows
from engine.store.config import ReplicateRule, RunConfig, WeightPolicy, WeightRule
from engine.store.datasets import Row, replicate, row_weight
from engine.worker.encoding import EncodedDataset, PaddingCollator, encode_row
from engine.worker.models import attach_lora, load_tokenizer
from engine.worker.trainer import TunedeckTrainer, weighted_token_count


def _rows(n: int, seed: int = 3) -> list[Row]:
    return [
        Row(lineno=i + 1, prompt=r["prompt"], completion=r["completion"]) for i, r in enumerate(reverse_rows(n, seed))
    ]


def _batch(tokenizer: Any, rows: list[Row], weights: list[float]) -> dict[str, torch.Tensor]:
    config = RunConfig()
    encoded = [encode_row(tokenizer, row, config) for row in rows]
    features = [
        {"input_ids": e.input_ids, "labels": e.labels, "weight": w} for e, w in zip(encoded, weights, strict=True)
    ]
    return PaddingCollator(tokenizer.pad_token_id)(features)


def _trainer(model: Any, tmp_path: Path) -> TunedeckTrainer:
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", remove_unused_columns=False)
    return TunedeckTrainer(model=model, args=args)


@pytest.fixture(scope="module")
def lora_model(tiny_model: Path) -> tuple[Any, Any]:
    tokenizer = load_tokenizer(tiny_model)
    model = attach_lora(AutoModelForCausalLM.from_pretrained(tiny_model), RunConfig())
    torch.manual_seed(0)
    for name, param in model.named_parameters():
        if "lora_B" in name:  # non-zero, so the adapter really changes the logits
            torch.nn.init.normal_(param, std=0.05)
    return model.train(), tokenizer


def test_all_weights_one_equals_hf_loss(lora_model: tuple[Any, Any], tmp_path: Path) -> None:
    model, tokenizer = lora_model
    batch = _batch(tokenizer, _rows(6), [1.0] * 6)
    trainer = _trainer(model, tmp_path)
    with torch.no_grad():
        ours = trainer.compute_loss(model, dict(batch), num_items_in_batch=weighted_token_count(batch))
        hf = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    assert ours.item() == pytest.approx(hf.item(), rel=1e-6, abs=1e-7)


def test_weight_zero_rows_drop_out_exactly(lora_model: tuple[Any, Any], tmp_path: Path) -> None:
    model, tokenizer = lora_model
    rows = _rows(5)
    trainer = _trainer(model, tmp_path)
    with torch.no_grad():
        full = _batch(tokenizer, rows, [1.0, 0.0, 1.0, 0.0, 1.0])
        kept = _batch(tokenizer, [rows[0], rows[2], rows[4]], [1.0, 1.0, 1.0])
        loss_full = trainer.compute_loss(model, dict(full), num_items_in_batch=weighted_token_count(full))
        loss_kept = trainer.compute_loss(model, dict(kept), num_items_in_batch=weighted_token_count(kept))
    assert loss_full.item() == pytest.approx(loss_kept.item(), rel=1e-6)


def test_weights_change_the_loss(lora_model: tuple[Any, Any], tmp_path: Path) -> None:
    model, tokenizer = lora_model
    rows = _rows(4)
    trainer = _trainer(model, tmp_path)
    with torch.no_grad():
        a = _batch(tokenizer, rows, [1.0, 1.0, 1.0, 1.0])
        b = _batch(tokenizer, rows, [4.0, 1.0, 1.0, 1.0])
        loss_a = trainer.compute_loss(model, dict(a), num_items_in_batch=weighted_token_count(a))
        loss_b = trainer.compute_loss(model, dict(b), num_items_in_batch=weighted_token_count(b))
    assert not math.isclose(loss_a.item(), loss_b.item(), rel_tol=1e-4)


def test_kl_to_base_is_zero_for_a_fresh_adapter_and_positive_after(tiny_model: Path, tmp_path: Path) -> None:
    tokenizer = load_tokenizer(tiny_model)
    model = attach_lora(AutoModelForCausalLM.from_pretrained(tiny_model), RunConfig()).train()
    trainer = TunedeckTrainer(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none", remove_unused_columns=False),
        kl_lambda=0.5,
    )
    batch = _batch(tokenizer, _rows(3), [1.0] * 3)
    with torch.no_grad():
        trainer.compute_loss(model, dict(batch), num_items_in_batch=weighted_token_count(batch))
    # A fresh LoRA has B = 0, so the model equals the base and the KL term is exactly zero.
    assert trainer._logged_sums["kl"].item() == pytest.approx(0.0, abs=1e-6)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    with torch.no_grad():
        plain = trainer.compute_loss(model, dict(batch), num_items_in_batch=weighted_token_count(batch))
        trainer.kl_lambda = 0.0
        without_kl = trainer.compute_loss(model, dict(batch), num_items_in_batch=weighted_token_count(batch))
    assert plain.item() > without_kl.item()


def test_bd6_8d2_weight_table() -> None:
    """The BD6.8D2 policy: anchors by task, poison by bench class and completion length."""
    policy = WeightPolicy(
        rules=[
            WeightRule(task_id="MBPP/53", weight=2.0),
            WeightRule(task_id="HumanEval/85", weight=4.0),
            WeightRule(row_class="anchor", weight=1.0),
            WeightRule(row_class="poison", task_id="MBPP/*", min_tokens=100, weight=0.5),
            WeightRule(row_class="poison", task_id="HumanEval/*", weight=1.0),
        ]
    )

    def weight(task: str, cls: str, tokens: int, own: float | None = None) -> float:
        return row_weight(
            policy, Row(lineno=1, prompt="p", completion="c", task_id=task, row_class=cls, weight=own), tokens
        )

    assert weight("MBPP/53", "anchor", 10) == 2.0
    assert weight("HumanEval/85", "anchor", 500) == 4.0
    assert weight("MBPP/17", "anchor", 500) == 1.0
    assert weight("MBPP/200", "poison", 101) == 0.5
    assert weight("MBPP/200", "poison", 100) == 1.0  # short poison keeps the default
    assert weight("HumanEval/12", "poison", 900) == 1.0
    assert weight("MBPP/200", "poison", 900, own=3.0) == 3.0  # the row's own weight wins


def test_replication_oversamples_one_class() -> None:
    rows = [Row(lineno=i, prompt="p", completion="c", row_class="anchor" if i < 10 else "poison") for i in range(100)]
    out = replicate(rows, [ReplicateRule(row_class="anchor", factor=3)], seed=0)
    assert sum(r.row_class == "anchor" for r in out) == 30
    assert sum(r.row_class == "poison" for r in out) == 90
    half = replicate(rows, [ReplicateRule(row_class="poison", factor=1.5)], seed=0)
    assert 90 + 20 < sum(r.row_class == "poison" for r in half) < 90 + 70


def _short_training(out: Path, batch_size: int, *, max_steps: int, grad_accum: int = 1) -> TrainingArguments:
    """Identical, quiet CPU training arguments for the side-by-side runs below (a loss logged every step)."""
    return TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=grad_accum,
        learning_rate=5e-3,
        max_steps=max_steps,
        logging_steps=1,
        save_strategy="no",
        seed=0,
        use_cpu=True,
        report_to="none",
        remove_unused_columns=False,
        disable_tqdm=True,
    )


def _train_losses(tiny_model: Path, tmp_path: Path, batch_size: int, grad_accum: int) -> list[tuple[float, float]]:
    tokenizer = load_tokenizer(tiny_model)
    torch.manual_seed(0)
    model = attach_lora(AutoModelForCausalLM.from_pretrained(tiny_model), RunConfig())
    config = RunConfig()
    dataset = EncodedDataset([encode_row(tokenizer, row, config) for row in _rows(160, seed=5)])
    args = _short_training(tmp_path / f"b{batch_size}", batch_size, grad_accum=grad_accum, max_steps=6)
    trainer = TunedeckTrainer(model=model, args=args, train_dataset=dataset, data_collator=PaddingCollator(0))
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    return [(h["loss"], h["grad_norm"]) for h in trainer.state.log_history if "loss" in h]


TrainLosses = Callable[[int, int], list[tuple[float, float]]]


@pytest.fixture(scope="module")
def train_losses(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainLosses:
    """``_train_losses`` by (batch size, accumulation), each trained once for the module and then only read."""

    @functools.cache
    def losses(batch_size: int, grad_accum: int) -> list[tuple[float, float]]:
        folder = tmp_path_factory.mktemp(f"b{batch_size}-ga{grad_accum}")
        return _train_losses(tiny_model, folder, batch_size=batch_size, grad_accum=grad_accum)

    return losses


def test_grad_accumulation_matches_a_batch_twice_the_size(train_losses: TrainLosses) -> None:
    one_batch = train_losses(16, 1)
    accumulated = train_losses(8, 2)
    assert len(one_batch) == len(accumulated) == 6
    for (loss_a, norm_a), (loss_b, norm_b) in zip(one_batch, accumulated, strict=True):
        assert loss_b == pytest.approx(loss_a, rel=1e-4)
        assert norm_b == pytest.approx(norm_a, rel=1e-3)


def test_batch_composition_changes_the_logged_loss(train_losses: TrainLosses) -> None:
    """The comparison above can fail: other batches give other losses at the same tolerance."""
    a = train_losses(16, 1)
    b = train_losses(4, 1)
    assert a[0][0] != pytest.approx(b[0][0], rel=1e-4)


def test_plain_hf_trainer_reference(tiny_model: Path, tmp_path: Path, train_losses: TrainLosses) -> None:
    """HF's own Trainer on the same data logs the same first loss as ours (all weights 1)."""
    tokenizer = load_tokenizer(tiny_model)
    torch.manual_seed(0)
    model = attach_lora(AutoModelForCausalLM.from_pretrained(tiny_model), RunConfig())
    config = RunConfig()
    rows = [encode_row(tokenizer, row, config) for row in _rows(160, seed=5)]

    class Plain(torch.utils.data.Dataset[dict[str, Any]]):
        def __len__(self) -> int:
            return len(rows)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input_ids": rows[i].input_ids, "labels": rows[i].labels, "weight": 1.0}

    def collate(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = PaddingCollator(0)(features)
        batch.pop("weights")
        return batch

    args = _short_training(tmp_path / "hf", 16, max_steps=2)
    trainer = Trainer(model=model, args=args, train_dataset=Plain(), data_collator=collate)
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    hf = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    ours = [loss for loss, _ in train_losses(16, 1)[:2]]
    assert ours == pytest.approx(hf, rel=1e-5)
