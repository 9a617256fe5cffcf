"""Threads on a shared CPU: training and generation speed with 1 thread, every core, and voicetune's choice
(the cores no other process is using, ``voicetune.threads``), on an idle machine and with one core held by
another process.

Run: .venv/bin/python benchmarks/bench_threads.py [--steps 3] [--prompts 16]

Each measurement runs in a fresh process: three LoRA training steps (bf16 autocast where supported, batch 8
of built-in examples, after one warm-up step) and the generation of ``--prompts`` built-in prompts (batch 8,
48 new tokens). "Busy" starts a process that spins on one core for the whole measurement. Prints seconds per
training step, new tokens per second, and the slowdown against the idle machine's best.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SPIN = "import time\nend = time.time() + 900\nwhile time.time() < end: pass"


def workload(threads: int, steps: int, prompts: int) -> dict:
    """Measured in this process: seconds per training step and new tokens per second of generation."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from voicetune.data import builtin_turns
    from voicetune.models.generate import SamplingConfig, TransformersBackend
    from voicetune.models.loading import load_tokenizer, resolve_model
    from voicetune.models.prompts import build_messages
    from voicetune.threads import apply_threads
    from voicetune.train.config import TrainConfig
    from voicetune.train.recipe import _precision

    chosen = apply_threads(threads)
    tokenizer = load_tokenizer("smollm2-135m")
    turns = builtin_turns("train")[:8]
    texts = [
        tokenizer.apply_chat_template(
            build_messages(t) + [{"role": "assistant", "content": t.reference}], tokenize=False
        )
        for t in turns
    ]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    model = AutoModelForCausalLM.from_pretrained(resolve_model("smollm2-135m"), dtype=torch.float32)
    model = get_peft_model(
        model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    bf16 = _precision(TrainConfig())
    durations = []
    for step in range(steps + 1):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step:  # the first step warms up
            durations.append(time.perf_counter() - started)
    backend = TransformersBackend("smollm2-135m", batch_size=8)
    messages = [build_messages(t) for t in builtin_turns("test")[:prompts]]
    started = time.perf_counter()
    out = backend.generate(messages, SamplingConfig(max_new_tokens=48, seed=0))
    elapsed = time.perf_counter() - started
    new_tokens = sum(len(backend.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in out)
    return {"threads": chosen, "step_s": sum(durations) / len(durations), "tokens_per_s": new_tokens / elapsed}


def measure(threads: int, busy: bool, steps: int, prompts: int) -> dict:
    spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
    try:
        if spinner:
            time.sleep(1.0)  # let the spinner show up in the kernel's counters
        child = subprocess.run(
            [sys.executable, __file__, "--child", str(threads), "--steps", str(steps), "--prompts", str(prompts)],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(workload(args.child, args.steps, args.prompts)))
        return
    from voicetune.threads import usable_cores

    cores = usable_cores()
    print(f"{cores} usable cores; smollm2-135m, LoRA training step of batch 8, generation batch 8 x 48 tokens")
    print(f"{'machine':<10} {'threads asked':<14} {'used':>4} {'s/step':>8} {'tokens/s':>9}")
    rows = {}
    for busy in (False, True):
        for threads in sorted({1, cores}) + [0]:
            result = measure(threads, busy, args.steps, args.prompts)
            rows[(busy, threads)] = result
            asked = "auto" if threads == 0 else str(threads)
            print(
                f"{'busy 1' if busy else 'idle':<10} {asked:<14} {result['threads']:>4} {result['step_s']:>8.2f} "
                f"{result['tokens_per_s']:>9.1f}",
                flush=True,
            )
    best_step = min(r["step_s"] for (busy, _), r in rows.items() if not busy)
    best_rate = max(r["tokens_per_s"] for (busy, _), r in rows.items() if not busy)
    for threads in sorted({1, cores}) + [0]:
        r = rows[(True, threads)]
        asked = "auto" if threads == 0 else str(threads)
        print(
            f"one core busy, threads {asked}: training {r['step_s'] / best_step:.2f}x the idle step time, "
            f"generation {best_rate / r['tokens_per_s']:.2f}x slower than idle"
        )


if __name__ == "__main__":
    main()
