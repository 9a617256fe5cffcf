"""The post-training recipe, read top to bottom: targets → SFT → sample → score → DPO → model.

Every step writes into the run directory and is skipped when its output is already there, so a killed
run resumes without redoing finished work; the trainers resume from their last checkpoint.

    DIR/config.yaml                 the resolved config (every default written out)
    DIR/train/targets.jsonl         the spoken targets (references, or a teacher's)
    DIR/train/sft/                  checkpoints/, merged/ (the SFT model)
    DIR/train/round1/candidates.jsonl   N sampled candidates per context, with scores
    DIR/train/round1/dpo_pairs.jsonl    (chosen, rejected) pairs with their scores and margin
    DIR/train/round1/dpo/           checkpoints/, merged/
    DIR/train/metrics.jsonl         every logged training step (loss, learning rate, rewards)
    DIR/model/                      the final merged Hugging Face model (``--model DIR/model``)
    DIR/summary.json                what was trained on, how long each step took
"""

from __future__ import annotations

import json
import random
import shutil
import time
from pathlib import Path
from typing import Callable

from voicetune.data import builtin_turns
from voicetune.errors import VoicetuneError
from voicetune.models.generate import HTTPBackend, SamplingConfig, generate_turns, make_backend
from voicetune.models.loading import resolve_model
from voicetune.models.prompts import build_messages, load_style_prompt
from voicetune.quality import score_response
from voicetune.records import Turn, atomic_write_text, load_records, write_records
from voicetune.train.config import TrainConfig, dump_config

Log = Callable[[str], None]


def train(config: TrainConfig, out: str | Path, log: Log = print) -> dict:
    """Run the whole recipe into ``out`` and return its summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", dump_config(config))
    timings: dict[str, float] = {}
    started = time.perf_counter()

    turns = _training_turns(config)
    targets = _targets(config, turns, out / "train" / "targets.jsonl", log)
    log(f"{len(targets)} training targets")

    step = time.perf_counter()
    policy = run_sft(config, resolve_model(config.model), targets, out / "train" / "sft", out / "train" / "metrics.jsonl", log)
    timings["sft_s"] = round(time.perf_counter() - step, 1)

    rounds = []
    for round_number in range(1, config.rounds + 1 if config.dpo.enabled else 1):
        folder = out / "train" / f"round{round_number}"
        step = time.perf_counter()
        candidates = sample_candidates(config, policy, targets, folder / "candidates.jsonl", log)
        timings[f"round{round_number}_sample_s"] = round(time.perf_counter() - step, 1)
        pairs = preference_pairs(targets, candidates, config.dpo.margin)
        write_records(folder / "dpo_pairs.jsonl", pairs)
        log(f"round {round_number}: {len(pairs)} DPO pairs from {len(candidates)} candidates (margin > {config.dpo.margin})")
        rounds.append({"round": round_number, "candidates": len(candidates), "pairs": len(pairs)})
        if not pairs:
            log("no pair clears the margin: skipping DPO this round")
            continue
        step = time.perf_counter()
        policy = run_dpo(config, policy, pairs, folder / "dpo", out / "train" / "metrics.jsonl", log)
        timings[f"round{round_number}_dpo_s"] = round(time.perf_counter() - step, 1)

    final = out / "model"
    if Path(policy) != final:
        staging = out / ".model.staging"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(policy, staging)
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    summary = {"model": str(final), "base_model": config.model, "targets": len(targets), "rounds": rounds, "timings": timings}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    log(f"model saved to {final} in {timings['total_s']:.0f} s")
    return summary


# --------------------------------------------------------------------------------------------------------
# Data and targets


def _training_turns(config: TrainConfig) -> list[Turn]:
    turns = builtin_turns("train") if config.data == "builtin" else load_records(config.data)
    if not turns:
        raise VoicetuneError(f"{config.data}: no training turns")
    return turns


def _targets(config: TrainConfig, turns: list[Turn], path: Path, log: Log) -> list[Turn]:
    """Turns whose ``reference`` is the spoken target: the records' own, or a teacher model's."""
    if path.exists():
        return load_records(path)
    if config.targets == "teacher":
        teacher = HTTPBackend(config.teacher_endpoint, config.teacher_model)
        log(f"asking the teacher {config.teacher_model} for {len(turns)} spoken targets")
        spoken = generate_turns(teacher, turns, path.with_name("teacher.jsonl"), load_style_prompt("default"), SamplingConfig(temperature=0.3))
        turns = [t.model_copy(update={"reference": t.response, "response": None}) for t in spoken]
    else:
        turns = [t for t in turns if t.reference]
        if not turns:
            raise VoicetuneError(f"{config.data}: no turn has a 'reference' to train on (use targets: teacher)")
    if config.sft.max_examples:
        turns = random.Random(config.seed).sample(turns, min(len(turns), config.sft.max_examples))
    write_records(path, turns)
    return turns


# --------------------------------------------------------------------------------------------------------
# Trainers


def _precision(config: TrainConfig) -> bool:
    """Whether to train in bf16 autocast: on a GPU that supports it, or a CPU with AVX-512 BF16 / AMX."""
    import torch

    if config.precision != "auto":
        return config.precision == "bf16"
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _common_args(config: TrainConfig, stage, checkpoints: Path) -> dict:
    import torch

    return dict(
        use_cpu=not torch.cuda.is_available(),
        output_dir=str(checkpoints),
        num_train_epochs=stage.epochs,
        per_device_train_batch_size=stage.batch_size,
        learning_rate=stage.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        logging_steps=1,
        save_strategy="steps",
        save_steps=10,
        save_total_limit=1,
        report_to=[],
        seed=config.seed,
        bf16=_precision(config),
        activation_checkpointing=config.gradient_checkpointing,
        max_length=config.max_length,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def _peft_config(config: TrainConfig):
    if not config.lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules, task_type="CAUSAL_LM",
    )


def _metrics_callback(path: Path, stage: str):
    from transformers import TrainerCallback

    class WriteMetrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as sink:
                    sink.write(json.dumps({"stage": stage, "step": state.global_step, **logs}) + "\n")

    return WriteMetrics()


def _fit_and_merge(trainer, folder: Path, tokenizer) -> str:
    """Train (resuming from the last checkpoint), merge LoRA into the weights, save ``folder/merged``."""
    from transformers.trainer_utils import get_last_checkpoint

    checkpoints = Path(trainer.args.output_dir)
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    trainer.train(resume_from_checkpoint=last)
    model = trainer.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    staging = folder / ".merged.staging"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    merged = folder / "merged"
    shutil.rmtree(merged, ignore_errors=True)
    staging.rename(merged)
    shutil.rmtree(checkpoints, ignore_errors=True)  # finished: the merged model replaces the checkpoints
    return str(merged)


def _load_for_training(model_path: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def run_sft(config: TrainConfig, model_path: str, targets: list[Turn], folder: Path, metrics: Path, log: Log) -> str:
    """Supervised fine-tuning on (prompt, spoken target); returns the merged model directory."""
    if (folder / "merged" / "config.json").is_file():
        log("SFT: done already")
        return str(folder / "merged")
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    model, tokenizer = _load_for_training(model_path)
    dataset = Dataset.from_list(
        [{"prompt": build_messages(t), "completion": [{"role": "assistant", "content": t.reference}]} for t in targets]
    )
    args = SFTConfig(**_common_args(config, config.sft, folder / "checkpoints"), gradient_accumulation_steps=config.sft.gradient_accumulation, completion_only_loss=True, train_sampling_strategy="group_by_length")
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
        peft_config=_peft_config(config), callbacks=[_metrics_callback(metrics, "sft")],
    )
    log(f"SFT: {len(dataset)} examples, {config.sft.epochs:g} epochs, bf16={args.bf16}, LoRA={config.lora.enabled}")
    return _fit_and_merge(trainer, folder, tokenizer)


def run_dpo(config: TrainConfig, model_path: str, pairs: list[dict], folder: Path, metrics: Path, log: Log) -> str:
    """DPO from the current policy on (chosen, rejected) pairs; the reference model's log-probabilities are
    computed once before training. Returns the merged model directory."""
    if (folder / "merged" / "config.json").is_file():
        log("DPO: done already")
        return str(folder / "merged")
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = _load_for_training(model_path)
    dataset = Dataset.from_list(
        [{"prompt": p["prompt"], "chosen": [{"role": "assistant", "content": p["chosen"]}], "rejected": [{"role": "assistant", "content": p["rejected"]}]} for p in pairs]
    )
    args = DPOConfig(**_common_args(config, config.dpo, folder / "checkpoints"), beta=config.dpo.beta, precompute_ref_log_probs=True)
    trainer = DPOTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
        peft_config=_peft_config(config), callbacks=[_metrics_callback(metrics, "dpo")],
    )
    log(f"DPO: {len(dataset)} pairs, beta {config.dpo.beta}, bf16={args.bf16}")
    return _fit_and_merge(trainer, folder, tokenizer)


# --------------------------------------------------------------------------------------------------------
# Sampling and preference pairs


def sample_candidates(config: TrainConfig, policy: str, targets: list[Turn], path: Path, log: Log) -> list[Turn]:
    """``candidates`` sampled responses per context from ``policy``, each scored (resumable)."""
    if path.exists():
        return load_records(path)
    contexts = targets
    if config.sample.contexts and len(contexts) > config.sample.contexts:
        contexts = random.Random(config.seed + 1).sample(contexts, config.sample.contexts)
    copies = [t.model_copy(update={"id": f"{t.id}#c{k}"}) for t in contexts for k in range(config.sample.candidates)]
    log(f"sampling {len(copies)} candidates ({config.sample.candidates} for each of {len(contexts)} contexts)")
    backend = make_backend(policy, batch_size=config.sample.batch_size)
    sampling = SamplingConfig(
        max_new_tokens=config.sample.max_new_tokens, temperature=config.sample.temperature, top_p=config.sample.top_p, seed=config.seed
    )
    sampled = generate_turns(backend, copies, path.with_name("candidates.raw.jsonl"), load_style_prompt(config.sample.style_prompt), sampling)
    scored = []
    for turn in sampled:
        result = score_response(turn, turn.response or "")
        scored.append(turn.model_copy(update={"scores": result.scores, "reasons": result.reasons}))
    write_records(path, scored)
    return scored


def preference_pairs(targets: list[Turn], candidates: list[Turn], margin: float) -> list[dict]:
    """One (chosen, rejected) pair per context: chosen = the best-scoring of the target and the candidates,
    rejected = the worst candidate; kept only when the voice_score margin exceeds ``margin``."""
    by_context: dict[str, list[Turn]] = {}
    for candidate in candidates:
        by_context.setdefault(candidate.id.split("#c")[0], []).append(candidate)
    target_of = {t.id: t for t in targets}
    pairs = []
    for context_id, group in by_context.items():
        target = target_of[context_id]
        target_score = score_response(target, target.reference).voice_score
        options = [(target_score, target.reference, "target")] + [(c.scores["voice_score"], c.response, "candidate") for c in group]
        best = max(options, key=lambda o: o[0])
        worst = min(((c.scores["voice_score"], c.response) for c in group), key=lambda o: o[0])
        if best[0] - worst[0] > margin and best[1] != worst[1]:
            pairs.append({
                "id": context_id, "prompt": build_messages(target), "chosen": best[1], "rejected": worst[1],
                "chosen_source": best[2], "chosen_score": best[0], "rejected_score": worst[0], "margin": round(best[0] - worst[0], 4),
            })
    return pairs
