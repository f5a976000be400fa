"""Turn validated rows into token ids with the prompt masked out of the loss."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from engine.store.config import RunConfig
from engine.store.datasets import Row, replicate, row_weight

IGNORE_INDEX = -100


@dataclass(frozen=True)
class EncodedRow:
    """A row ready for the collator: ids, labels (prompt = -100) and its loss weight."""

    input_ids: list[int]
    labels: list[int]
    weight: float


def _prompt_and_completion_ids(tokenizer: Any, row: Row) -> tuple[list[int], list[int]]:
    if row.messages is None:
        assert row.prompt is not None
        assert row.completion is not None
        prompt = tokenizer(row.prompt, add_special_tokens=False)["input_ids"]
        completion = tokenizer(row.completion, add_special_tokens=False)["input_ids"]
        return list(prompt), list(completion) + [tokenizer.eos_token_id]
    messages = [{"role": role, "content": content} for role, content in row.messages]
    prompt = tokenizer.apply_chat_template(messages[:-1], add_generation_prompt=True, tokenize=True, return_dict=False)
    full = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
    # Chat templates render the prompt as a prefix of the full conversation; where one does
    # not, mask the longest common prefix so no prompt token is ever trained on.
    shared = 0
    while shared < min(len(prompt), len(full)) and prompt[shared] == full[shared]:
        shared += 1
    return list(full[:shared]), list(full[shared:])


def encode_row(tokenizer: Any, row: Row, config: RunConfig) -> EncodedRow:
    """Tokenize one row, weight it by the run's policy, and truncate to ``max_length``."""
    prompt, completion = _prompt_and_completion_ids(tokenizer, row)
    weight = row_weight(config.weights, row, len(completion))
    ids = (prompt + completion)[: config.train.max_length]
    labels = ([IGNORE_INDEX] * len(prompt) + completion)[: config.train.max_length]
    return EncodedRow(ids, labels, weight)


class EncodedDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """Encoded rows as the dicts the collator pads."""

    def __init__(self, rows: Sequence[EncodedRow]) -> None:
        self.rows = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        return {"input_ids": row.input_ids, "labels": row.labels, "weight": row.weight}


def encode_rows(tokenizer: Any, rows: list[Row], config: RunConfig, *, train: bool) -> EncodedDataset:
    """Encode a split; the training split is replicated by the run's rules first."""
    if train:
        rows = replicate(rows, config.replicate, config.train.seed)
    return EncodedDataset([encode_row(tokenizer, row, config) for row in rows])


class PaddingCollator:
    """Right-pads a batch; labels pad with -100 so padding never counts in the loss."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        input_ids = torch.full((len(features), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((len(features), width), dtype=torch.long)
        for i, feature in enumerate(features):
            n = len(feature["input_ids"])
            input_ids[i, :n] = torch.tensor(feature["input_ids"], dtype=torch.long)
            labels[i, :n] = torch.tensor(feature["labels"], dtype=torch.long)
            attention[i, :n] = 1
        weights = torch.tensor([float(f.get("weight", 1.0)) for f in features], dtype=torch.float32)
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels, "weights": weights}
