"""What each kind of hard negative does: on held-out turns, does a trained policy prefer the right response to
each kind of corruption of it more than the model it was trained from?

Run: .venv/bin/python benchmarks/bench_negatives.py --reference runs/train/train/sft/model \
        --model with=runs/train/model --model without=runs/train_nohn/model [--split test] [--limit 50]

For every held-out turn with a spoken reference (the built-in ``--split``, never trained on), each corruption
kind of :mod:`voicetune.data.corrupt` that applies gives a (reference, corruption) pair. For each model it
prints, per kind, the DPO *implicit reward accuracy*: the share of pairs where
``log p_model(reference) − log p_ref(reference) > log p_model(corruption) − log p_ref(corruption)``
(``ref`` = ``--reference``, the SFT model DPO started from), and the mean implicit margin in nats. 50% is
chance: the trained model moved no more towards the right response than towards the corrupted one.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def completion_logprobs(model_path: str, items: list[tuple[list[dict], str]], batch_size: int = 16) -> list[float]:
    """Sum of log-probabilities of each completion given its chat prompt."""
    import torch

    from voicetune.models.loading import load_model, load_tokenizer

    tokenizer = load_tokenizer(model_path)
    model = load_model(model_path, "fp32").eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = []
    for prompt, completion in items:
        prompt_ids = tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True)
        prompt_ids = list(
            prompt_ids["input_ids"] if isinstance(prompt_ids, dict) or hasattr(prompt_ids, "keys") else prompt_ids
        )
        full = tokenizer.apply_chat_template(prompt + [{"role": "assistant", "content": completion}], tokenize=True)
        full = list(full["input_ids"] if isinstance(full, dict) or hasattr(full, "keys") else full)
        encoded.append((full, len(prompt_ids)))
    scores: list[float] = [0.0] * len(items)
    order = sorted(range(len(items)), key=lambda i: len(encoded[i][0]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            width = max(len(encoded[i][0]) for i in batch)
            ids = torch.full((len(batch), width), pad)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                tokens = encoded[i][0]
                ids[row, : len(tokens)] = torch.tensor(tokens)
                mask[row, : len(tokens)] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            for row, i in enumerate(batch):
                tokens, prompt_length = encoded[i]
                scores[i] = float(logp[row, prompt_length - 1 : len(tokens) - 1].sum())
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="the model DPO started from (the SFT model)")
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH of a trained model; repeat")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from voicetune.data import builtin_turns
    from voicetune.data.corrupt import KINDS, corruptions
    from voicetune.models.prompts import build_messages
    from voicetune.threads import apply_threads

    apply_threads(0)
    turns = [t for t in builtin_turns(args.split) if t.reference][: args.limit]
    pairs = [(t, c) for t in turns for c in corruptions(t.reference, t, KINDS, seed=args.seed)]
    items = [(build_messages(t), t.reference) for t, _ in pairs] + [(build_messages(t), c.text) for t, c in pairs]
    reference = completion_logprobs(args.reference, items)
    n = len(pairs)
    print(f"{len(turns)} held-out turns of the built-in {args.split} split, {n} (reference, corruption) pairs")
    header = f"{'kind':<16} {'pairs':>5} " + " ".join(f"{name.split('=')[0]:>18}" for name in args.model)
    print(header)
    results = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        policy = completion_logprobs(path, items)
        by_kind = defaultdict(list)
        for index, (_, corruption) in enumerate(pairs):
            chosen = policy[index] - reference[index]
            rejected = policy[n + index] - reference[n + index]
            by_kind[corruption.kind].append(chosen - rejected)
        results[name] = by_kind
    for kind in list(KINDS) + ["all"]:
        cells = []
        for spec in args.model:
            margins = [m for k, v in results[spec.split("=")[0]].items() if kind in (k, "all") for m in v]
            cells.append(
                f"{sum(m > 0 for m in margins) / len(margins):>8.0%} {sum(margins) / len(margins):>+8.2f}"
                if margins
                else f"{'-':>18}"
            )
        count = sum(1 for _, c in pairs if kind in (c.kind, "all"))
        print(f"{kind:<16} {count:>5} " + " ".join(f"{c:>18}" for c in cells))
    print(
        "cells: implicit reward accuracy (share of pairs where the model moved more towards the reference than "
        "towards the corruption, against --reference) and the mean implicit margin in nats"
    )


if __name__ == "__main__":
    main()
