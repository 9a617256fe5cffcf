"""The post-training recipe, read top to bottom: targets → SFT → sample → score → pairs → DPO → model.

A round samples on the targets' contexts and, with ``sample.data``, on imported turns that have no reference;
its pairs are each context's best against its worst response under the reward, and (first round) the hard
negatives: a target against a corrupted copy of it (a flipped negation, swapped amounts, a repeated sentence).

Every step writes into the run directory and records what it was made from beside its outputs
(``NAME.fingerprint.json``: the config section it depends on, the hashes of its input files and of the
policy's weights, the reward config, the package version; see :mod:`voicetune.provenance`). A step is
skipped only when that record matches; otherwise it is redone and its old outputs are moved to
``.superseded/`` with a one-line notice. So a killed run resumes without redoing finished work (the
trainers resume from their last checkpoint), and a re-run with a changed config redoes exactly the steps
that depend on the change: a new ``dpo.beta`` reruns DPO only; a new ``sample.temperature`` reruns
sampling, scoring, pairs and DPO; a new ``reward`` rescoring, pairs and DPO, not sampling.

    DIR/config.yaml                     the resolved config of the latest run (every default written out)
    DIR/reward.yaml                     its reward section alone: `voicetune eval --scorer-config DIR/reward.yaml`
    DIR/train/targets.jsonl             the spoken targets (references, or a teacher's)
    DIR/train/sft/                      checkpoints/ (while training), model/ (the SFT policy)
    DIR/train/round1/candidates.raw.jsonl   N sampled candidates per context
    DIR/train/round1/candidates.jsonl   the same, scored by the reward (typed ``Candidate`` records)
    DIR/train/round1/dpo_pairs.jsonl    (chosen, rejected) pairs with their scores, margin and source
    (``PreferencePair``)
    DIR/train/round1/dpo/               checkpoints/ (while training), model/ (the policy after this round)
    DIR/train/metrics.jsonl             every logged training step (loss, learning rate, rewards)
    DIR/model/                          the final model (``--model DIR/model``)
    DIR/summary.json                    what was trained on, which steps ran, how long each took

With LoRA, a policy (``model/``) is an adapter stack (:mod:`voicetune.models.loading`): the base model's name and
weights hash, the LoRA adapter of each trainer step so far (about 20 MB each for the 135M model), config and
tokenizer; every reader rebuilds the merged fp32 weights from it, bit for bit those a merged save would hold. So a
run keeps no merged copies (538 MB each for the 135M model) unless ``save_merged`` asks for them (``merged/`` beside
each ``model/``). Full fine-tuning (``lora.enabled: false``), or a base not on disk, saves merged weights instead.
"""

from __future__ import annotations

import random
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from voicetune.data import builtin_turns
from voicetune.data.corrupt import synthetic_pairs
from voicetune.data.references import reference_turns
from voicetune.errors import VoicetuneError
from voicetune.judge.learned import default_judge
from voicetune.models.generate import HTTPBackend, SamplingConfig, generate_turns, make_backend
from voicetune.models.loading import (
    building_folder,
    is_adapter_stack,
    link_tree,
    load_merged,
    model_identity,
    resolve_model,
    save_adapter_stack,
    stack_base,
    write_merged,
)
from voicetune.models.prompts import build_messages, load_style_prompt
from voicetune.progress import bar
from voicetune.provenance import Step, hash_file, hash_records, hash_tree, package_version
from voicetune.quality import ScorerConfig, score_response
from voicetune.quality.scorer import prefetch_meaning
from voicetune.records import Candidate, PreferencePair, Turn, atomic_write_text, dumps, load_records, write_records
from voicetune.settings import dump_yaml
from voicetune.threads import apply_threads
from voicetune.train.config import TrainConfig, dump_config

Log = Callable[[str], None]


def train(config: TrainConfig, out: str | Path, log: Log = print) -> dict:
    """Run the whole recipe into ``out`` and return its summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.yaml", dump_config(config))
    atomic_write_text(out / "reward.yaml", dump_yaml(config.reward))  # for `eval --scorer-config`: judge as trained
    timings: dict[str, float] = {}
    ran: list[str] = []
    started = time.perf_counter()
    threads = apply_threads(config.threads, log)
    _score_completion_tokens_only()

    def timed(name: str, function, *args):
        step_started = time.perf_counter()
        result, did_run = function(*args)
        if did_run:
            timings[f"{name}_s"] = round(time.perf_counter() - step_started, 1)
            ran.append(name)
        return result

    turns, data_id = _training_turns(config)
    targets_path = out / "train" / "targets.jsonl"
    targets = timed("targets", make_targets, config, turns, data_id, targets_path, log)
    log(f"{len(targets)} training targets")

    policy = timed(
        "sft", run_sft, config, config.model, targets_path, out / "train" / "sft", out / "train" / "metrics.jsonl", log
    )

    extra, extra_id = _extra_contexts(config)
    if extra:
        log(
            f"{len(extra)} more contexts to sample on from {config.sample.data} (pairs from the policy's own "
            "candidates)"
        )
    rounds = []
    for round_number in range(1, config.rounds + 1 if config.dpo.enabled else 1):
        folder = out / "train" / f"round{round_number}"
        contexts = sampling_contexts(config, targets, extra, round_number)
        raw = timed(
            f"round{round_number}_sample",
            sample_candidates,
            config,
            policy,
            contexts,
            folder / "candidates.raw.jsonl",
            log,
        )
        candidates = timed(
            f"round{round_number}_score",
            score_candidates,
            config.reward,
            raw,
            folder / "candidates.raw.jsonl",
            folder / "candidates.jsonl",
            log,
            config.reward_judge,
        )
        negatives = targets if round_number == 1 else []  # hard negatives once: they are not the policy's own samples
        pairs = timed(
            f"round{round_number}_pairs",
            make_preference_pairs,
            config,
            contexts,
            negatives,
            folder / "candidates.jsonl",
            candidates,
            folder / "dpo_pairs.jsonl",
            log,
        )
        kinds = Counter(p.rejected_source for p in pairs)
        log(
            f"round {round_number}: {len(pairs)} DPO pairs ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}) "
            f"from {len(candidates)} candidates on {len(contexts)} contexts (margin > {config.dpo.margin})"
        )
        rounds.append(
            {
                "round": round_number,
                "contexts": len(contexts),
                "candidates": len(candidates),
                "pairs": len(pairs),
                "rejected": dict(kinds),
            }
        )
        if not pairs:
            log("no pair clears the margin: skipping DPO this round")
            continue
        policy = timed(
            f"round{round_number}_dpo",
            run_dpo,
            config,
            policy,
            folder / "dpo_pairs.jsonl",
            folder / "dpo",
            out / "train" / "metrics.jsonl",
            log,
        )

    final = timed("model", save_final_model, policy, out / "model", log)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    summary = {
        "model": str(final),
        "base_model": config.model,
        "targets": len(targets),
        "rounds": rounds,
        "steps_run": ran,
        "timings": timings,
        "reward": config.reward.model_dump(),
        "version": package_version(),
        "threads": threads,
    }
    atomic_write_text(out / "summary.json", dumps(summary, indent=2) + "\n")
    log(f"model saved to {final} in {timings['total_s']:.0f} s" + ("" if ran else " (every step was up to date)"))
    return summary


def _step(folder_or_file: Path, outputs: list[Path], made_from: dict, log: Log, name: str | None = None) -> Step:
    """The provenance record of a step whose main output is ``folder_or_file``: ``NAME.fingerprint.json`` beside it."""
    record = folder_or_file.with_name(folder_or_file.name.removesuffix(".jsonl") + ".fingerprint.json")
    return Step(record, outputs, {**made_from, "version": package_version()}, name=name, log=log)


def save_final_model(policy: str, final: Path, log: Log) -> tuple[Path, bool]:
    """Copy the last policy to ``DIR/model`` (built aside, then renamed; its files hard-linked where possible)."""
    step = _step(final, [final], {"policy": hash_tree(policy)}, log, name="model")
    if step.done and (final / "config.json").is_file():
        return final, False
    step.begin()
    with building_folder(final) as building:
        link_tree(Path(policy), building)
    step.finish()
    return final, True


# --------------------------------------------------------------------------------------------------------
# Data and targets


def _training_turns(config: TrainConfig) -> tuple[list[Turn], str]:
    """The training turns and a hash of them (the built-in split's content, or the data file's bytes)."""
    if config.data == "builtin":
        turns = builtin_turns("train")
        identity = hash_records(turns)
    elif config.data == "spoken":
        turns = reference_turns("train")
        identity = hash_records(turns)
    else:
        turns = load_records(config.data, unique_ids=True)  # a repeated id would mix two turns
        identity = hash_file(config.data)
    if not turns:
        raise VoicetuneError(f"{config.data}: no training turns")
    return turns, identity


def _extra_contexts(config: TrainConfig) -> tuple[list[Turn], str]:
    """The ``sample.data`` turns (contexts without references) and a hash of the file; none when unset."""
    if not config.sample.data:
        return [], ""
    turns = [t for t in load_records(config.sample.data, unique_ids=True) if t.draft]
    if not turns:
        raise VoicetuneError(f"{config.sample.data}: no turn with a draft to sample on (sample.data)")
    return turns, hash_file(config.sample.data)


def sampling_contexts(config: TrainConfig, targets: list[Turn], extra: list[Turn], round_number: int) -> list[Turn]:
    """The contexts a round samples on: ``sample.contexts`` of the targets and ``sample.data_contexts`` of the
    extra turns, seeded samples that differ from round to round (a later round sees new contexts where there
    are more than it needs). Extra turns keep no reference: their pairs come from the candidates alone."""

    def draw(turns: list[Turn], count: int | None, salt: int) -> list[Turn]:
        if count and len(turns) > count:
            return random.Random(config.seed * 1000 + round_number * 10 + salt).sample(turns, count)
        return list(turns)

    own = draw(targets, config.sample.contexts, 1)
    known = {t.id for t in own}
    more = [
        t.model_copy(update={"reference": None})
        for t in draw(extra, config.sample.data_contexts, 2)
        if t.id not in known
    ]
    return own + more


def make_targets(config: TrainConfig, turns: list[Turn], data_id: str, path: Path, log: Log) -> tuple[list[Turn], bool]:
    """Turns whose ``reference`` is the spoken target: the records' own, or a teacher model's."""
    teacher_raw = path.with_name("teacher.jsonl")
    settings = {k: getattr(config, k) for k in ("targets", "teacher_endpoint", "teacher_model", "seed")}
    step = _step(
        path,
        [path, teacher_raw, teacher_raw.with_name(teacher_raw.name + ".partial")],
        {"data": data_id, "config": {**settings, "max_examples": config.sft.max_examples}},
        log,
        name="targets",
    )
    if step.done and path.is_file():
        return load_records(path), False
    step.begin()
    if config.targets == "teacher":
        assert config.teacher_endpoint and config.teacher_model  # TrainConfig requires both with targets: teacher
        teacher = HTTPBackend(config.teacher_endpoint, config.teacher_model)
        log(f"asking the teacher {config.teacher_model} for {len(turns)} spoken targets")
        spoken = generate_turns(
            teacher, turns, teacher_raw, load_style_prompt("default"), SamplingConfig(temperature=0.3)
        )
        turns = [t.model_copy(update={"reference": t.response, "response": None}) for t in spoken]
    else:
        turns = [t for t in turns if t.reference]
        if not turns:
            raise VoicetuneError(f"{config.data}: no turn has a 'reference' to train on (use targets: teacher)")
    if config.sft.max_examples:
        turns = random.Random(config.seed).sample(turns, min(len(turns), config.sft.max_examples))
    write_records(path, turns)
    step.finish(records=len(turns))
    return turns, True


# --------------------------------------------------------------------------------------------------------
# Trainers


def _precision(config: TrainConfig) -> bool:
    """Whether to train in bf16 autocast: on a GPU that supports it, or a CPU with AVX-512 BF16 / AMX."""
    import torch  # noqa: PLC0415 (heavy: torch)

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
    import torch  # noqa: PLC0415 (heavy: torch)

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
        disable_tqdm=True,  # steps show as a bar of voicetune.progress (one display in `voicetune run`)
    )


def _peft_config(config: TrainConfig):
    if not config.lora.enabled:
        return None
    from peft import LoraConfig  # noqa: PLC0415 (heavy: peft)

    return LoraConfig(
        r=config.lora.r,
        lora_alpha=config.lora.alpha,
        lora_dropout=config.lora.dropout,
        target_modules=config.lora.target_modules,
        task_type="CAUSAL_LM",
    )


def _metrics_callback(path: Path, stage: str):
    from transformers import TrainerCallback  # noqa: PLC0415 (heavy: transformers)

    class WriteMetrics(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as sink:
                    sink.write(dumps({"stage": stage, "step": state.global_step, **logs}) + "\n")

    return WriteMetrics()


def _step_bar(label: str):
    """A trainer callback showing the steps as a :func:`voicetune.progress.bar` (instead of the trainer's tqdm
    bar and printed logs); its ``stack`` closes the bar, however training ends."""
    from transformers import TrainerCallback  # noqa: PLC0415 (heavy: transformers)

    class StepBar(TrainerCallback):
        stack = ExitStack()

        def on_train_begin(self, args, state, control, **kwargs):
            self.advance = self.stack.enter_context(bar(state.max_steps, label))
            self.advance(state.global_step)  # resumed from a checkpoint: those steps are done

        def on_step_end(self, args, state, control, **kwargs):
            self.advance()

    return StepBar()


def _fit_and_save(trainer, folder: Path, tokenizer, label: str, parent: str, save_merged: bool) -> str:
    """Train (resuming from the last checkpoint) and save the policy in ``folder/model``: with LoRA and a base on
    disk, an adapter stack (``parent``'s adapters and this one, named after the step); else the merged weights.
    ``save_merged``: also the merged weights of a stack in ``folder/merged``."""
    from transformers import PrinterCallback  # noqa: PLC0415 (heavy: transformers)
    from transformers.trainer_utils import get_last_checkpoint  # noqa: PLC0415 (heavy: transformers)

    checkpoints = Path(trainer.args.output_dir)
    last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
    steps = _step_bar(label)
    trainer.remove_callback(PrinterCallback)  # every logged step is in metrics.jsonl, not on the terminal
    trainer.add_callback(steps)
    with steps.stack:
        trainer.train(resume_from_checkpoint=last)
    model = trainer.model
    policy = folder / "model"
    lora = hasattr(model, "merge_and_unload")
    stacked = lora and stack_base(parent) is not None
    if stacked:
        name = folder.name if folder.name == "sft" else f"{folder.parent.name}-{folder.name}"  # sft, round1-dpo, ...
        save_adapter_stack(policy, parent, model, tokenizer, name)
    if not stacked or save_merged:
        with building_folder(folder / "merged" if stacked else policy) as building:
            (model.merge_and_unload() if lora else model).save_pretrained(building, safe_serialization=True)
            tokenizer.save_pretrained(building)
    shutil.rmtree(checkpoints, ignore_errors=True)  # finished: the saved policy replaces the checkpoints
    return str(policy)


def _finished_policy(folder: Path, save_merged: bool) -> str | None:
    """A trainer step's saved policy (``folder/model``), None when there is none; ``save_merged`` with an
    adapter stack: its merged weights are written to ``folder/merged`` where they are missing (rebuilt, not
    retrained)."""
    policy = folder / "model"
    if not (policy / "config.json").is_file():
        return None
    if save_merged and is_adapter_stack(policy) and not (folder / "merged" / "config.json").is_file():
        write_merged(policy, folder / "merged")
    return str(policy)


def _load_for_training(model_path: str):
    import torch  # noqa: PLC0415 (heavy: torch)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415 (heavy: transformers)
    from transformers.utils import logging as transformers_logging  # noqa: PLC0415 (heavy: transformers)

    # loading, saving and dataset bars: the steps have their own (voicetune.progress)
    transformers_logging.disable_progress_bar()
    try:
        import datasets  # noqa: PLC0415 (heavy: datasets)

        datasets.disable_progress_bars()
    except ImportError:
        pass

    warnings.filterwarnings(
        "ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning
    )  # inside TRL, not ours

    if is_adapter_stack(model_path):
        model = load_merged(model_path)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _training_settings(config: TrainConfig, stage) -> dict:
    """The config a trainer's output depends on: its stage (less what other steps consume: the DPO margin
    shapes the pairs, whose hash is an input), LoRA, lengths, precision and the seed."""
    return {
        "stage": stage.model_dump(exclude={"enabled", "margin", "hard_negatives"}),
        "lora": config.lora.model_dump(),
        "max_length": config.max_length,
        "precision": config.precision,
        "gradient_checkpointing": config.gradient_checkpointing,
        "seed": config.seed,
    }


def run_sft(
    config: TrainConfig, model_spec: str, targets_path: Path, folder: Path, metrics: Path, log: Log
) -> tuple[str, bool]:
    """Supervised fine-tuning on (prompt, spoken target); returns the policy's directory (``folder/model``)."""
    step = _step(
        folder,
        [folder],
        {
            "model": model_identity(model_spec),
            "targets": hash_file(targets_path),
            "config": _training_settings(config, config.sft),
            "output": "model/",
        },
        log,
        name="sft",
    )
    if step.done and (policy := _finished_policy(folder, config.save_merged)):
        log("SFT: done already")
        return policy, False
    step.begin()
    from datasets import Dataset  # noqa: PLC0415 (heavy: datasets)
    from trl import SFTConfig, SFTTrainer  # noqa: PLC0415 (heavy: trl)

    targets = load_records(targets_path)
    model, tokenizer = _load_for_training(resolve_model(model_spec))
    dataset = Dataset.from_list(
        [{"prompt": build_messages(t), "completion": [{"role": "assistant", "content": t.reference}]} for t in targets]
    )
    packing = (
        {"packing": True, "padding_free": True}
        if config.sft.packing
        else {"train_sampling_strategy": "group_by_length"}
    )
    args = SFTConfig(
        **_common_args(config, config.sft, folder / "checkpoints"),
        gradient_accumulation_steps=config.sft.gradient_accumulation,
        completion_only_loss=True,
        **packing,
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=_peft_config(config),
        callbacks=[_metrics_callback(metrics, "sft")],
    )
    log(
        f"SFT: {len(dataset)} examples, {config.sft.epochs:g} epochs, bf16={args.bf16}, LoRA={config.lora.enabled}, "
        f"packing={config.sft.packing}"
    )
    policy = _fit_and_save(trainer, folder, tokenizer, "SFT steps", model_spec, config.save_merged)
    step.finish(examples=len(dataset))
    return policy, True


def run_dpo(
    config: TrainConfig, model_path: str, pairs_path: Path, folder: Path, metrics: Path, log: Log
) -> tuple[str, bool]:
    """DPO from the current policy on (chosen, rejected) pairs; the reference model's log-probabilities are
    computed once before training. Returns the policy's directory (``folder/model``)."""
    step = _step(
        folder,
        [folder],
        {
            "policy": hash_tree(model_path),
            "pairs": hash_file(pairs_path),
            "config": _training_settings(config, config.dpo),
            "output": "model/",
        },
        log,
        name=f"{folder.parent.name}/dpo",
    )
    if step.done and (policy := _finished_policy(folder, config.save_merged)):
        log("DPO: done already")
        return policy, False
    step.begin()
    from datasets import Dataset  # noqa: PLC0415 (heavy: datasets)
    from trl import DPOConfig, DPOTrainer  # noqa: PLC0415 (heavy: trl)

    pairs = load_records(pairs_path, PreferencePair)
    model, tokenizer = _load_for_training(model_path)
    dataset = Dataset.from_list(
        [
            {
                "prompt": p.prompt,
                "chosen": [{"role": "assistant", "content": p.chosen}],
                "rejected": [{"role": "assistant", "content": p.rejected}],
            }
            for p in pairs
        ]
    )
    args = DPOConfig(
        **_common_args(config, config.dpo, folder / "checkpoints"), beta=config.dpo.beta, precompute_ref_log_probs=True
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=_peft_config(config),
        callbacks=[_metrics_callback(metrics, "dpo")],
    )
    log(f"DPO: {len(dataset)} pairs, beta {config.dpo.beta}, bf16={args.bf16}")
    policy = _fit_and_save(trainer, folder, tokenizer, "DPO steps", model_path, config.save_merged)
    step.finish(pairs=len(dataset))
    return policy, True


# --------------------------------------------------------------------------------------------------------
# Sampling, scoring and preference pairs


def sample_candidates(
    config: TrainConfig, policy: str, contexts: list[Turn], path: Path, log: Log
) -> tuple[list[Candidate], bool]:
    """``candidates`` sampled responses per context from ``policy`` (resumable, unscored)."""
    partial = path.with_name(path.name + ".partial")
    sampling_settings = config.sample.model_dump(exclude={"data", "data_contexts", "contexts"})
    step = _step(
        path,
        [path, partial],
        {
            "policy": hash_tree(policy),
            "contexts": hash_records(contexts),
            "config": {"sample": sampling_settings, "seed": config.seed},
        },
        log,
        name=f"{path.parent.name}/sample",
    )
    if step.done and path.is_file():
        return load_records(path, Candidate), False
    step.begin()
    copies = [
        Candidate.model_validate(
            {**t.model_dump(exclude={"id"}), "id": f"{t.id}#c{k}", "turn_id": t.id, "candidate_index": k}
        )
        for t in contexts
        for k in range(config.sample.candidates)
    ]
    log(f"sampling {len(copies)} candidates ({config.sample.candidates} for each of {len(contexts)} contexts)")
    backend = make_backend(policy, batch_size=config.sample.batch_size)
    sampling = SamplingConfig(
        max_new_tokens=config.sample.max_new_tokens,
        temperature=config.sample.temperature,
        top_p=config.sample.top_p,
        seed=config.seed,
    )
    sampled = generate_turns(backend, copies, path, load_style_prompt(config.sample.style_prompt), sampling)
    step.finish(candidates=len(sampled))
    return [Candidate.model_validate(t.model_dump()) for t in sampled], True


def score_candidates(
    reward: ScorerConfig, raw: list[Candidate], raw_path: Path, path: Path, log: Log, judge: str = "learned"
) -> tuple[list[Candidate], bool]:
    """Each candidate scored by the reward (``scores``, typed ``findings``, rendered ``reasons``); with the learned
    judge, ``scores["reward"]`` is its score (usable first, then style) and ``usable``/``usable_p``/``failure`` are
    set."""
    made_from = {"candidates": hash_file(raw_path), "reward": reward.model_dump()}
    learned = None
    if judge == "learned":
        learned = default_judge(reward, log=log)
        made_from["judge"] = learned.meta["labels"]
    step = _step(path, [path], made_from, log, name=f"{path.parent.name}/score")
    if step.done and path.is_file():
        return load_records(path, Candidate), False
    step.begin()
    prefetch_meaning(((c, c.response or "") for c in raw), reward, progress=True)
    scored = [_with_score(c, score_response(c, c.response or "", reward)) for c in raw]
    if learned is not None:
        assessed = learned.assess(scored, [c.response or "" for c in scored])
        scored = [
            c.model_copy(
                update={
                    "scores": {**(c.scores or {}), "reward": a.score},
                    "usable": a.usable,
                    "usable_p": a.usable_p,
                    "failure": a.failure,
                }
            )
            for c, a in zip(scored, assessed, strict=True)
        ]
    write_records(path, scored)
    step.finish(candidates=len(scored))
    return scored, True


def _with_score(record, result):
    update = {"scores": result.scores, "reasons": result.reasons}
    if hasattr(result, "findings") and "findings" in type(record).model_fields:
        update["findings"] = [f.model_dump() if hasattr(f, "model_dump") else f for f in result.findings]
    return record.model_copy(update=update)


def make_preference_pairs(
    config: TrainConfig,
    contexts: list[Turn],
    negatives_from: list[Turn],
    candidates_path: Path,
    candidates: list[Candidate],
    path: Path,
    log: Log,
) -> tuple[list[PreferencePair], bool]:
    """The DPO pairs of a round: the on-policy pairs (see :func:`preference_pairs`) and, from the targets in
    ``negatives_from``, the hard negatives (see :func:`hard_negative_pairs`); recorded with what they were made from."""
    negatives = config.dpo.hard_negatives
    step = _step(
        path,
        [path],
        {
            "candidates": hash_file(candidates_path),
            "contexts": hash_records(contexts),
            "negatives_from": hash_records(negatives_from),
            "hard_negatives": negatives.model_dump(),
            "margin": config.dpo.margin,
            "reward": config.reward.model_dump(),
            "reward_judge": config.reward_judge,
            "seed": config.seed,
        },
        log,
        name=f"{path.parent.name}/pairs",
    )
    if step.done and path.is_file():
        return load_records(path, PreferencePair), False
    step.begin()
    pairs = preference_pairs(contexts, candidates, config.dpo.margin, config.reward)
    pairs += hard_negative_pairs(
        negatives_from, negatives.kinds, negatives.contexts, negatives.per_context, config.reward, config.seed
    )
    write_records(path, pairs)
    step.finish(pairs=len(pairs))
    return pairs, True


def preference_pairs(
    contexts: list[Turn], candidates: list[Candidate], margin: float, reward: ScorerConfig | None = None
) -> list[PreferencePair]:
    """One (chosen, rejected) pair per context: chosen = the best-scoring of the context's target (its
    ``reference``, when it has one) and the candidates, rejected = the worst candidate; kept only when the
    voice_score margin exceeds ``margin``."""
    by_turn: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_turn.setdefault(candidate.turn_id, []).append(candidate)
    context_of = {t.id: t for t in contexts}
    pairs = []
    for turn_id, group in by_turn.items():
        context = context_of[turn_id]
        learned = any("reward" in (c.scores or {}) for c in group)
        options: list[tuple[float, str, str, int | None]] = [
            (_reward(c.scores), c.response or "", "candidate", c.candidate_index) for c in group
        ]
        if context.reference:
            if learned:
                target_score = default_judge(reward).score(context, context.reference).score
            else:
                target_score = score_response(context, context.reference, reward).voice_score
            options.insert(0, (target_score, context.reference, "target", None))
        best = max(options, key=lambda o: o[0])
        worst = min(group, key=lambda c: _reward(c.scores))
        worst_score = _reward(worst.scores)
        if best[0] - worst_score > margin and best[1] != worst.response:
            pairs.append(
                PreferencePair(
                    turn_id=turn_id,
                    prompt=build_messages(context),
                    chosen=best[1],
                    rejected=worst.response or "",
                    chosen_source=best[2],
                    chosen_index=best[3],
                    rejected_index=worst.candidate_index,
                    chosen_score=best[0],
                    rejected_score=worst_score,
                    margin=round(best[0] - worst_score, 4),
                )
            )
    return pairs


def _reward(scores: dict | None) -> float:
    """A candidate's reward: the learned judge's score when it was scored by it, else the voice score."""
    scores = scores or {}
    return scores["reward"] if "reward" in scores else scores.get("voice_score", 0.0)


def hard_negative_pairs(
    targets: list[Turn],
    kinds: list[str],
    contexts: int | None,
    per_context: int,
    reward: ScorerConfig | None = None,
    seed: int = 0,
) -> list[PreferencePair]:
    """(target, corrupted target) pairs: for a seeded sample of ``contexts`` targets, ``per_context``
    corruptions each (:func:`voicetune.data.corrupt.synthetic_pairs`, which spreads the kinds evenly).

    A corruption is wrong by construction, so the pair is kept whatever the reward says; both responses are
    scored, and ``margin`` records how far the reward sees the difference (near zero or negative: a blind spot
    of the reward that the hard negative teaches anyway). ``rejected_source`` is ``corruption:KIND``.
    """
    targets = [t for t in targets if t.reference]
    if not kinds or not targets:
        return []
    if contexts and len(targets) > contexts:
        targets = random.Random(f"{seed}:hard-negatives").sample(targets, contexts)
    target_of = {t.id: t for t in targets}
    made = [
        (target_of[p.meta["from_turn"]], p.response_b if p.meta["label"] == "a" else p.response_a, p.meta["corruption"])
        for p in synthetic_pairs(targets, seed=seed, per_turn=per_context, kinds=kinds)
    ]
    prefetch_meaning(
        [(t, t.reference or "") for t, _, _ in made] + [(t, text) for t, text, _ in made], reward or ScorerConfig()
    )
    pairs = []
    for turn, corrupted, kind in made:
        chosen_score = score_response(turn, turn.reference or "", reward).voice_score
        rejected_score = score_response(turn, corrupted, reward).voice_score
        pairs.append(
            PreferencePair(
                turn_id=turn.id,
                prompt=build_messages(turn),
                chosen=turn.reference or "",
                rejected=corrupted,
                chosen_source="target",
                rejected_source=f"corruption:{kind}",
                chosen_score=chosen_score,
                rejected_score=rejected_score,
                margin=round(chosen_score - rejected_score, 4),
            )
        )
    return pairs


def _score_completion_tokens_only() -> None:
    """Make TRL score only the completion's tokens through the LM head on the CPU, as it does on GPUs.

    TRL 1.x computes each position's log-probability with a chunked LM-head kernel; off Triton devices it scores
    *every* position (prompt included) to keep tile shapes fixed for compilers, then masks the prompt out. On a
    CPU nothing is compiled, and with prompts five times longer than responses that LM head (49k-token
    vocabulary, fp32) was 43% of a training step. The loss is the same either way (masked positions contribute
    zero); SFT and DPO steps run about 1.6x faster (``benchmarks/bench_train_step.py``). A private name of
    TRL's: where it is missing, nothing is changed.
    """
    try:
        import trl.trainer.utils as trl_utils  # noqa: PLC0415 (heavy: trl)
    except ImportError:
        return
    original = getattr(trl_utils, "_use_triton", None)
    if original is None or getattr(original, "voicetune", False):
        return

    def compact_positions(device) -> bool:
        return getattr(device, "type", "") == "cpu" or original(device)

    setattr(compact_positions, "voicetune", True)  # noqa: B010  (marks the patch, so it is applied once)
    trl_utils._use_triton = compact_positions
