"""Build the listener pool: turns to be spoken x every system the project makes -> items for blind readers.

Run: .venv/bin/python scripts/listener/build_pool.py --tuned runs/listener-train [--work runs/listener]

Contexts (each turn once, with the half it belongs to, by conversation):
  * built-in turns: every test- and dev-split turn, and 60 train-split turns (seed 0);
  * tau-bench airline (../shared, real GPT-4o drafts): every turn of the held-out tasks and 100 of the others
    (named by turn id only: the third-party text stays in ../shared and is looked up at load time);
  * the helper-written domains in src/voicetune/data/listener/domains/ (every turn; half of the conversations test).
Systems: draft, draft+pipecat, reference on every context; base (SmolLM2-135M), prompted (+voice) and tuned (the
default training's final model) on 300 of them (MODEL_CONTEXTS; generation is the costly part on a CPU);
tuned-sft (the training's SFT policy, two of its sampled candidates, on the contexts it sampled); corruptions
(data/corrupt/, of the reference or the formatted draft: one where models answered, else two) and one failure
shape (loop, role confusion, truncation) made from a model answer, or from the reference or formatted draft.
Model answers are sampled exactly as ``voicetune eval`` samples them (temperature 0.7, 96 new tokens, seed 0), so
on the built-in test split they are the default run's eval responses.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from pathlib import Path

from voicetune.data import import_transcripts, split_records
from voicetune.data.builtin import builtin_turns
from voicetune.data.corrupt import KINDS, corrupt
from voicetune.data.labelled import TAU_TRANSCRIPTS, default_shared_data
from voicetune.data.listener import domain_turns
from voicetune.evaluate.systems import parse_system, system_responses
from voicetune.models.generate import make_backend
from voicetune.records import Turn


def contexts(seed: int = 0, sampled: frozenset[str] = frozenset()) -> list[Turn]:
    rng = random.Random(seed)
    chosen: list[Turn] = []
    splits = {name: builtin_turns(name) for name in ("train", "dev", "test")}
    for name, turns in splits.items():
        # train-split turns: those the training sampled its SFT policy on (their candidates are items), then others to
        # 60
        first = [t for t in turns if t.id in sampled]
        picked = (
            turns
            if name != "train"
            else first + rng.sample([t for t in turns if t.id not in sampled], max(0, 60 - len(first)))
        )
        for t in picked:
            t.meta.update(pool_split="test" if name == "test" else "dev", pool_source="builtin", builtin_split=name)
            chosen.append(t)
    tau = import_transcripts(default_shared_data() / TAU_TRANSCRIPTS, "tau-bench")
    tau_splits = split_records([t for t in tau if t.draft])
    for t in tau_splits["test"]:
        t.meta.update(pool_split="test", pool_source="tau-bench")
        chosen.append(t)
    for t in rng.sample(tau_splits["train"] + tau_splits["dev"], 100):
        t.meta.update(pool_split="dev", pool_source="tau-bench")
        chosen.append(t)
    for t in domain_turns():
        chosen.append(t)
    return chosen


#: How many contexts of each (source, half) the model systems answer (generation is the costly part on a CPU):
#: every built-in test turn (they are the default run's evaluation turns), and samples of the rest.
MODEL_CONTEXTS = {
    ("builtin", "test"): 50,
    ("builtin", "dev"): 50,
    ("tau-bench", "test"): 60,
    ("tau-bench", "dev"): 40,
    ("domains", "test"): 50,
    ("domains", "dev"): 50,
}


def model_contexts(turns: list[Turn], seed: int = 0) -> list[Turn]:
    rng = random.Random(seed)
    chosen = []
    for (source, half), count in MODEL_CONTEXTS.items():
        group = [
            t
            for t in turns
            if t.meta["pool_source"] == source
            and t.meta["pool_split"] == half
            and t.meta.get("builtin_split") != "train"
        ]  # stable whichever train turns the training sampled
        chosen += group if len(group) <= count else rng.sample(group, count)
    return chosen


def loop(text: str, rng: random.Random) -> str:
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    s = rng.choice(sentences[:2]) if sentences else text
    return " ".join(sentences[:1] + [s] * rng.randint(2, 4))


def role_confusion(turn: Turn, text: str, rng: random.Random) -> str:
    kind = rng.choice(["label", "caller", "meta"])
    if kind == "label":
        return f"Draft reply: {text}"
    if kind == "caller":
        return turn.last_user_text or f"Hi, I'm calling about my account. {text}"
    return f'Sure! Here\'s a version of the response that sounds natural when spoken: "{text}"'


def truncate(text: str, rng: random.Random) -> str:
    words = text.split()
    if len(words) < 6:
        return " ".join(words[: max(1, len(words) - 1)])
    return " ".join(words[: rng.randint(max(2, len(words) // 4), max(3, len(words) * 2 // 3))])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--tuned", type=Path, required=True, help="the default training's run directory (model/, train/sft/model/)"
    )
    parser.add_argument("--work", type=Path, default=Path("runs/listener"))
    parser.add_argument("--systems", default="base,prompted,tuned")
    parser.add_argument(
        "--static-only",
        action="store_true",
        help="only the contexts no model answers (and not the training's): "
        "their items are final before any generation, so reading can start (pool_static.jsonl)",
    )
    args = parser.parse_args()
    candidates = args.tuned / "train" / "round1" / "candidates.raw.jsonl"
    sampled = (
        frozenset(json.loads(line)["turn_id"] for line in candidates.read_text(encoding="utf-8").splitlines())
        if candidates.is_file()
        else frozenset()
    )
    turns = contexts(sampled=sampled)
    print(f"{len(turns)} contexts")
    specs = {
        "base": "smollm2-135m",
        "prompted": "smollm2-135m+voice",
        "tuned": str(args.tuned / "model"),
        "tuned-sft": str(args.tuned / "train" / "sft" / "model"),
    }
    answers: dict[str, dict[str, str]] = {}
    answered = model_contexts(turns)
    print(f"{len(answered)} contexts answered by the models")
    if args.static_only:
        skip = {t.id for t in answered}
        turns = [t for t in turns if t.id not in skip and t.meta.get("builtin_split") != "train"]
        args.systems = ""
        print(f"static only: {len(turns)} contexts")
    for name in ["draft", "draft+pipecat", "reference"] + [n for n in args.systems.split(",") if n]:
        system = parse_system(f"{name}={specs[name]}" if name in specs else name)
        subset = turns if system.deterministic else answered
        answers[name] = system_responses(
            system,
            subset,
            args.work / "responses",
            seed=0,
            max_new_tokens=96,
            temperature=0.7,
            backend_for=lambda s: make_backend(s.model, batch_size=16),
        )
        print(name, len(answers[name]), flush=True)
    # the default training's SFT policy, as sampled during training (4 candidates a context)
    sft: dict[str, list[str]] = {}
    if candidates.is_file():
        for line in candidates.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            sft.setdefault(row["turn_id"], []).append(row["response"])
    items = []
    for turn in turns:
        rng = random.Random(int(hashlib.sha256(turn.id.encode()).hexdigest()[:8], 16))
        made = {name: answers[name].get(turn.id) for name in answers}
        for k, text in enumerate(sft.get(turn.id, [])[:2]):
            made[f"tuned-sft#{k}"] = text
        model_texts = [made[n] for n in ("tuned", "prompted", "base") if made.get(n)]
        base_text = made.get("reference") or made.get("draft+pipecat")
        kinds = list(KINDS)
        rng.shuffle(kinds)
        wanted = 1 if model_texts else 2
        for kind in kinds:
            if wanted and base_text and (c := corrupt(base_text, turn, kind, rng)) is not None:
                made[f"corruption:{kind}"] = c.text
                wanted -= 1
        sources = model_texts or [t for t in (made.get("reference"), made.get("draft+pipecat")) if t]
        if sources:
            shape = rng.choice(["loop", "role", "truncated"])
            source = rng.choice(sources)
            if shape == "loop":
                made[f"shape:{shape}"] = loop(source, rng)
            elif shape == "role":
                made[f"shape:{shape}"] = role_confusion(turn, source, rng)
            else:
                made[f"shape:{shape}"] = truncate(source, rng)
        seen = set()
        for system, text in made.items():
            if not text or not text.strip() or text.strip() in seen:
                continue
            seen.add(text.strip())
            item_id = "i" + hashlib.sha256(f"{turn.id}|{system}".encode()).hexdigest()[:10]
            items.append(
                {
                    "id": item_id,
                    "context": turn.id,
                    "system": system,
                    "synthetic": system.split(":")[0] in ("corruption", "shape"),
                    "response": text,
                    "response_sha": hashlib.sha256(text.encode()).hexdigest()[:16],
                }
            )
    full = {t.id: t for t in turns}
    rows = items
    name = "pool_static.jsonl" if args.static_only else "pool_full.jsonl"
    (args.work / name).write_text(
        "".join(
            json.dumps({"item": r, "context": full[r["context"]].model_dump(mode="json")}, ensure_ascii=False) + "\n"
            for r in rows
        ),
        encoding="utf-8",
    )
    print(len(items), "items")
    counts: dict[str, int] = {}
    for item in items:
        counts[item["system"].split(":")[0]] = counts.get(item["system"].split(":")[0], 0) + 1
    print(len(items), "items", counts)


if __name__ == "__main__":
    main()
