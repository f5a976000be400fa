"""A user's own Trainer script gains a tunedeck run with one line: ``add_callback(TunedeckCallback(...))``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, PrinterCallback, Trainer, TrainingArguments

from engine.demo.reverse_task import reverse_rows
from engine.store.campaign import Campaign
from engine.store.config import RunConfig
from engine.store.metrics import read_metrics
from engine.worker.callbacks import TunedeckCallback
from engine.worker.encoding import EncodedDataset, PaddingCollator, encode_row
from engine.worker.models import attach_lora, load_tokenizer


class _NoWeights(PaddingCollator):
    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = super().__call__(features)
        batch.pop("weights")  # a plain Trainer passes every key to the model
        return batch


def test_callback_on_a_plain_trainer_records_a_run(tmp_path: Path, tiny_model: Path) -> None:
    campaign = Campaign.create(tmp_path / "c", "plain")
    tokenizer = load_tokenizer(tiny_model)
    from engine.store.datasets import Row

    rows = [Row(lineno=i, prompt=r["prompt"], completion=r["completion"]) for i, r in enumerate(reverse_rows(64, 1))]
    dataset = EncodedDataset([encode_row(tokenizer, row, RunConfig()) for row in rows])
    model = attach_lora(AutoModelForCausalLM.from_pretrained(tiny_model), RunConfig())
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=8,
        max_steps=12,
        logging_steps=4,
        save_strategy="no",
        learning_rate=5e-3,
        use_cpu=True,
        report_to="none",
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=_NoWeights(0))
    trainer.remove_callback(PrinterCallback)

    trainer.add_callback(TunedeckCallback(campaign.root, "my-script-run"))  # the one line
    trainer.train()

    assert "my-script-run" in campaign.run_names()
    assert campaign.load_run("my-script-run").imported_from == "external Trainer script"
    records = read_metrics(campaign.run("my-script-run").metrics)
    assert [r["step"] for r in records if "loss" in r] == [4, 8, 12]
    assert all("grad_norm" in r and "learning_rate" in r for r in records if "loss" in r)
    kinds = [json.loads(line)["event"] for line in campaign.run("my-script-run").events.read_text().splitlines()]
    assert kinds == ["started", "finished"]
