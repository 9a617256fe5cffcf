"""Training and generation speed on this machine, for the embedded default model.

Run: .venv/bin/python benchmarks/bench_train.py [--examples 48] [--steps 6]

Run: .venv/bin/python benchmarks/bench_train.py [--examples 48] [--steps 6] [--threads N]

Training: tokens per second of SFT with LoRA on built-in (prompt, reference) examples, for
 - "TRL defaults": SFTConfig's defaults on a CPU (fp32, gradient checkpointing on, LoRA on all linear layers,
   batch 8, no length grouping) — what a user gets from TRL out of the box;
 - "recipe, issue 10": bf16 autocast where the CPU has AVX-512 BF16, no gradient checkpointing,
   length-grouped batches, LoRA dropout 0.05, the LM head over every position;
 - "voicetune now": the same without LoRA dropout and with the LM head over the completion's tokens only
   (``voicetune.train.recipe._score_completion_tokens_only``: the same loss);
and the ratios. Generation: new tokens per second of the transformers backend at several batch sizes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def sft_tokens_per_second(examples, model_path: str, steps: int, **overrides) -> float:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    dataset = Dataset.from_list(examples)
    timing = {}

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 1:  # skip the first step (warm-up)
                timing["start"] = time.perf_counter()
                timing["tokens"] = state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kwargs):
            timing["end"] = time.perf_counter()
            timing["end_tokens"] = state.num_input_tokens_seen

    settings = dict(
        output_dir=tempfile.mkdtemp(),
        max_steps=steps,
        per_device_train_batch_size=8,
        logging_steps=100,
        save_strategy="no",
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        include_num_input_tokens_seen="non_padding",
        disable_tqdm=True,
        bf16=False,
        activation_checkpointing=True,
    )
    dropout = overrides.pop("lora_dropout", 0.05)
    completion_only = overrides.pop("completion_tokens_only", False)
    settings.update(overrides)
    import trl.trainer.utils as trl_utils

    original = trl_utils._use_triton
    if completion_only:
        from voicetune.train.recipe import _score_completion_tokens_only

        _score_completion_tokens_only()
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**settings),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=16, lora_alpha=32, lora_dropout=dropout, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
        callbacks=[Clock()],
    )
    try:
        trainer.train()
    finally:
        trl_utils._use_triton = original
    return (timing["end_tokens"] - timing["tokens"]) / (timing["end"] - timing["start"])


def generation_tokens_per_second(model_spec: str, turns, batch_size: int, max_new_tokens: int = 64) -> float:
    from voicetune.models.generate import SamplingConfig, TransformersBackend
    from voicetune.models.prompts import build_messages

    backend = TransformersBackend(model_spec, batch_size=batch_size)
    prompts = [build_messages(t) for t in turns]
    backend.generate(prompts[:batch_size], SamplingConfig(max_new_tokens=8))  # warm-up
    start = time.perf_counter()
    texts = backend.generate(prompts, SamplingConfig(max_new_tokens=max_new_tokens))
    elapsed = time.perf_counter() - start
    tokens = sum(len(backend.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    return tokens / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--skip-generation", action="store_true")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: the free cores, as voicetune chooses)")
    args = parser.parse_args()
    from voicetune.threads import apply_threads

    threads = apply_threads(args.threads)

    from voicetune.data import builtin_turns
    from voicetune.models.loading import resolve_model
    from voicetune.models.prompts import build_messages
    from voicetune.train.config import TrainConfig
    from voicetune.train.recipe import _precision

    turns = builtin_turns("train")[: args.examples]
    examples = [
        {"prompt": build_messages(t), "completion": [{"role": "assistant", "content": t.reference}]} for t in turns
    ]
    model_path = resolve_model("smollm2-135m")
    bf16 = _precision(TrainConfig())
    if not args.skip_training:
        recipe = dict(bf16=bf16, activation_checkpointing=False, train_sampling_strategy="group_by_length")
        trl = sft_tokens_per_second(examples, model_path, args.steps)
        before = sft_tokens_per_second(examples, model_path, args.steps, **recipe)
        now = sft_tokens_per_second(
            examples, model_path, args.steps, **recipe, lora_dropout=0.0, completion_tokens_only=True
        )
        print(
            f"SFT, LoRA, smollm2-135m, {args.steps - 1} timed steps of batch 8, {threads} threads on {os.cpu_count()} "
            "cores"
        )
        print(f"  TRL defaults (fp32, gradient checkpointing): {trl:,.0f} tokens/s")
        print(
            f"  recipe of issue 10 (bf16={bf16}, no checkpointing, length-grouped, LoRA dropout, every position): "
            f"{before:,.0f} tokens/s"
        )
        print(f"  voicetune now (no LoRA dropout, LM head on completion tokens): {now:,.0f} tokens/s")
        print(f"  ratios: now / TRL defaults {now / trl:.2f}x, now / issue 10 {now / before:.2f}x")
    if not args.skip_generation:
        for batch_size in (1, 8, 32):
            rate = generation_tokens_per_second("smollm2-135m", builtin_turns("test")[:32], batch_size)
            print(f"generation, transformers backend, batch {batch_size}: {rate:,.0f} new tokens/s")


if __name__ == "__main__":
    main()
