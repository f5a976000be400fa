"""A tiny Qwen2-shaped causal LM and a Qwen2-compatible tokenizer, built offline from scratch.

Saved as an ordinary Hugging Face model folder and loaded back with ``from_pretrained``, so
tests and the demo exercise exactly the code path a real model folder takes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

from engine.demo.reverse_task import tokenizer_corpus

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# Qwen's chat format, so chat-message datasets work on the tiny model as on a real one.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer(vocab_size: int = 600) -> Qwen2Tokenizer:
    """Train a byte-level BPE with exactly Qwen2's normalizer and pre-tokenizer.

    transformers rebuilds a ``Qwen2Tokenizer`` from vocab and merges on load, with Qwen's own
    NFC normalizer and regex split; training with the same pipeline makes the reloaded
    tokenizer identical to the trained one.
    """
    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    saved = json.loads(bpe.to_str())
    vocab: dict[str, int] = saved["model"]["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in saved["model"]["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,  # type: ignore[arg-type]  # the backend takes (left, right) pairs
        unk_token="<|endoftext|>",
        # As in Qwen's instruct models: a turn ends with <|im_end|>, padding is <|endoftext|>.
        # They must differ: the pad row of a tied embedding is zero and frozen, so a model
        # whose end token is the pad token can never learn to stop.
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=["<|im_start|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_config(vocab_size: int, *, eos_token_id: int, pad_token_id: int) -> Qwen2Config:
    """The smallest Qwen2 shape that learns: initializer_range 0.1 (0.02 leaves LoRA stuck)."""
    return Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        initializer_range=0.1,
        bos_token_id=None,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )


def build_tiny_model(out_dir: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random Qwen2 model and its tokenizer to ``out_dir`` as an HF model folder."""
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    config = tiny_config(len(tokenizer), eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m engine.worker.tinymodel OUT_DIR``: build the tiny model and check it reloads."""
    parser = argparse.ArgumentParser(prog="python -m engine.worker.tinymodel")
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = build_tiny_model(args.out_dir, seed=args.seed)
    AutoModelForCausalLM.from_pretrained(out)
    AutoTokenizer.from_pretrained(out)
    print(out)


if __name__ == "__main__":
    main()
