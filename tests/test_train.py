"""Post-training mechanics on a tiny randomly initialised Llama (seconds), and one slower test on the
embedded model (load offline, generate, one training step)."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter

import pytest

from voicetune.data import builtin_turns
from voicetune.errors import VoicetuneError
from voicetune.models.generate import SamplingConfig, TransformersBackend, generate_turns
from voicetune.models.loading import (
    is_adapter_stack,
    load_merged,
    load_model,
    merged_folder,
    save_adapter_stack,
    write_merged,
)
from voicetune.provenance import hash_tree
from voicetune.records import PreferencePair, load_records, write_records
from voicetune.train import load_config, preference_pairs, train

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("trl")


def tiny_config(tiny_model: str, **overrides):
    settings = {
        "model": tiny_model,
        "max_length": 256,
        "precision": "fp32",
        "sft": {"max_examples": 6, "epochs": 1, "batch_size": 3},
        "sample": {"contexts": 3, "candidates": 2, "max_new_tokens": 12, "batch_size": 6},
        "dpo": {"margin": 0.0, "batch_size": 2},
    }
    settings.update(overrides)
    return load_config(None, settings)


def test_recipe_runs_end_to_end_and_the_model_loads(tmp_path, tiny_model):
    summary = train(tiny_config(tiny_model), tmp_path, log=lambda _: None)
    model_dir = tmp_path / "model"
    assert (model_dir / "config.json").is_file() and summary["model"] == str(model_dir)
    assert (tmp_path / "config.yaml").is_file()
    candidates = load_records(tmp_path / "train" / "round1" / "candidates.jsonl")
    assert len(candidates) == 6 and all(c.scores and "voice_score" in c.scores for c in candidates)
    pairs = load_records(tmp_path / "train" / "round1" / "dpo_pairs.jsonl", PreferencePair)
    on_policy = [p for p in pairs if p.rejected_source == "candidate"]
    negatives = [p for p in pairs if p.rejected_source.startswith("corruption:")]
    assert on_policy and all(p.chosen_score - p.rejected_score > 0 for p in on_policy)
    assert negatives and all(p.chosen_source == "target" and p.rejected != p.chosen for p in negatives)
    assert summary["rounds"][0]["rejected"] == dict(Counter(p.rejected_source for p in pairs))
    metrics = [json.loads(line) for line in (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()]
    assert {m["stage"] for m in metrics} == {"sft", "dpo"}
    # the trained model is an adapter stack (no weights of its own, no merged copies in the run) that generate loads
    assert is_adapter_stack(model_dir) and json.loads((model_dir / "adapters.json").read_text())["adapters"] == [
        "1-sft",
        "2-round1-dpo",
    ]
    assert not list(tmp_path.rglob("merged")) and not list(tmp_path.rglob("checkpoints"))
    assert [p.name for p in tmp_path.rglob("*.safetensors")] == [
        "adapter_model.safetensors"
    ] * 5  # sft/, dpo/ (2), model/ (2)
    backend = TransformersBackend(str(model_dir), batch_size=2)
    texts = backend.generate([[{"role": "user", "content": "hello"}]] * 2, SamplingConfig(max_new_tokens=5))
    assert len(texts) == 2


def test_a_killed_run_resumes_without_redoing_finished_steps(tmp_path, tiny_model):
    config = tiny_config(tiny_model)
    train(config, tmp_path, log=lambda _: None)
    candidates = tmp_path / "train" / "round1" / "candidates.jsonl"
    stamp = candidates.stat().st_mtime_ns
    # simulate a kill during DPO: its output and the final model are missing
    shutil.rmtree(tmp_path / "train" / "round1" / "dpo")
    shutil.rmtree(tmp_path / "model")
    messages: list[str] = []
    train(config, tmp_path, log=messages.append)
    assert "SFT: done already" in messages
    assert candidates.stat().st_mtime_ns == stamp  # sampling was not redone
    assert (tmp_path / "model" / "config.json").is_file()


def _same_weights(a, b) -> bool:
    """Whether two models hold bit for bit the same tensors (parameters and buffers, with their dtypes)."""
    first, second = a.state_dict(), b.state_dict()
    buffers = {name: t.dtype for name, t in a.named_buffers()} == {name: t.dtype for name, t in b.named_buffers()}
    return (
        buffers
        and first.keys() == second.keys()
        and all(first[k].dtype == second[k].dtype and torch.equal(first[k], second[k]) for k in first)
    )


def _adapter_stack(base, folder, parent=None, seed=0):
    """A LoRA adapter with random weights on ``parent`` (an adapter stack) or ``base``, saved as training saves it;
    returns the stack's folder and the model merged in memory, as training merged it."""
    from peft import LoraConfig, get_peft_model  # noqa: PLC0415 (heavy: peft)

    model = (
        load_merged(parent) if parent else transformers.AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    )
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_" in name:
                parameter.normal_(0, 0.05)
    save_adapter_stack(folder, str(parent or base), peft_model, transformers.AutoTokenizer.from_pretrained(base), "sft")
    return folder, peft_model.merge_and_unload()


def test_an_adapter_stack_rebuilds_the_merged_weights_bit_for_bit(tmp_path, tiny_model, monkeypatch):
    base = tmp_path / "base"
    shutil.copytree(tiny_model, base)
    first, merged_first = _adapter_stack(base, tmp_path / "first")
    second, merged_second = _adapter_stack(
        base, tmp_path / "second", parent=first, seed=1
    )  # trained on top of the first
    manifest = json.loads((second / "adapters.json").read_text())
    assert manifest["base"] == str(base.resolve()) and manifest["adapters"] == ["1-sft", "2-sft"]
    assert not list(second.glob("*.safetensors"))
    assert _same_weights(load_merged(first), merged_first) and _same_weights(load_merged(second), merged_second)
    # a plain folder for readers that need one; load_model casts the rebuilt weights as from_pretrained casts a plain
    # folder's
    plain = write_merged(second, tmp_path / "plain")
    assert _same_weights(transformers.AutoModelForCausalLM.from_pretrained(plain, dtype=torch.float32), merged_second)
    monkeypatch.setenv("VOICETUNE_CACHE", str(tmp_path / "cache"))
    cached = merged_folder(second)  # for vLLM: written once, keyed by the stack's files
    assert cached.parent == tmp_path / "cache" / "merged" and hash_tree(cached) == hash_tree(plain)
    stamp = (cached / "model.safetensors").stat().st_mtime_ns
    assert merged_folder(second) == cached and (cached / "model.safetensors").stat().st_mtime_ns == stamp
    for dtype, torch_dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        assert _same_weights(
            load_model(str(second), dtype), transformers.AutoModelForCausalLM.from_pretrained(plain, dtype=torch_dtype)
        )
    # the adapters apply to the base they were trained on: a changed base is refused, naming it
    changed = transformers.AutoModelForCausalLM.from_pretrained(base)
    with torch.no_grad():
        changed.model.norm.weight.add_(1.0)
    changed.save_pretrained(base)
    with pytest.raises(VoicetuneError, match="not the one its adapters were trained on"):
        load_merged(second)


def test_an_adapter_stack_on_a_hub_model_names_it_and_needs_its_local_snapshot(tmp_path, tiny_model, monkeypatch):
    import huggingface_hub.constants  # noqa: PLC0415 (heavy: huggingface_hub)
    from peft import LoraConfig, get_peft_model  # noqa: PLC0415 (heavy: peft)

    cache = tmp_path / "hub"
    snapshot = cache / "models--someone--tiny" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model, snapshot)
    (cache / "models--someone--tiny" / "refs").mkdir()
    (cache / "models--someone--tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    model = transformers.AutoModelForCausalLM.from_pretrained(snapshot, dtype=torch.float32)
    peft_model = get_peft_model(
        model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    save_adapter_stack(
        tmp_path / "stack", "someone/tiny", peft_model, transformers.AutoTokenizer.from_pretrained(snapshot), "sft"
    )
    assert json.loads((tmp_path / "stack" / "adapters.json").read_text())["base"] == "someone/tiny"
    assert _same_weights(load_merged(tmp_path / "stack"), peft_model.merge_and_unload())
    shutil.rmtree(cache)
    with pytest.raises(VoicetuneError, match="its base model someone/tiny is not on this machine"):
        load_merged(tmp_path / "stack")


def test_saved_merged_weights_equal_the_rebuilt_stack(tmp_path, tiny_model):
    """``save_merged``: each trainer step also saves the weights it merged after training (as runs did before
    adapter stacks); the stack rebuilds them bit for bit, and into the same files."""
    summary = train(tiny_config(tiny_model, save_merged=True), tmp_path, log=lambda _: None)
    assert summary["steps_run"] == _ALL_STEPS
    for step in (tmp_path / "train" / "sft", tmp_path / "train" / "round1" / "dpo"):
        merged = transformers.AutoModelForCausalLM.from_pretrained(step / "merged", dtype=torch.float32)
        assert _same_weights(load_merged(step / "model"), merged)
        assert hash_tree(write_merged(step / "model", tmp_path / "rebuilt" / step.name)) == hash_tree(step / "merged")
    assert not (tmp_path / "model" / "merged").exists() and is_adapter_stack(tmp_path / "model")


def test_save_merged_on_a_finished_run_rebuilds_without_retraining(tmp_path, tiny_model, trained_run):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert not list(run.rglob("merged"))  # off by default
    messages: list[str] = []
    assert train(tiny_config(tiny_model, save_merged=True), run, log=messages.append)["steps_run"] == []
    assert not [m for m in messages if "redoing" in m]
    for step in (run / "train" / "sft", run / "train" / "round1" / "dpo"):
        assert _same_weights(
            load_merged(step / "model"),
            transformers.AutoModelForCausalLM.from_pretrained(step / "merged", dtype=torch.float32),
        )


def test_generation_resumes_from_partial_rows(tmp_path, tiny_model):
    turns = builtin_turns("test")[:4]
    output = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    from voicetune.models.generate import _prompt_key

    kept = {"id": turns[0].id, "prompt": _prompt_key(turns[0], None), "response": "kept from the first run"}
    changed = {"id": turns[1].id, "prompt": "made-from-an-older-prompt", "response": "stale"}
    partial.write_text(json.dumps(kept) + "\n" + json.dumps(changed) + "\n" + '{"id": "cut sho')
    backend = TransformersBackend(tiny_model, batch_size=2)
    result = generate_turns(backend, turns, output, None, SamplingConfig(max_new_tokens=6), progress=False)
    assert [t.id for t in result] == [t.id for t in turns]
    assert result[0].response == "kept from the first run" and result[1].response != "stale"
    assert not partial.exists() and len(load_records(output)) == 4


def test_preference_pairs_keep_only_margins_above_the_threshold():
    from voicetune.quality import score_response
    from voicetune.records import Candidate

    turn = builtin_turns("train")[0]
    good = Candidate.model_validate(
        {**turn.model_dump(), "id": "k0", "turn_id": turn.id, "candidate_index": 0, "response": turn.reference}
    )
    bad = Candidate.model_validate(
        {
            **turn.model_dump(),
            "id": "k1",
            "turn_id": turn.id,
            "candidate_index": 1,
            "response": "**Note:** " + (turn.draft or ""),
        }
    )
    for candidate in (good, bad):
        candidate.scores = score_response(candidate, candidate.response).scores
    pairs = preference_pairs([turn], [good, bad], margin=0.05)
    assert len(pairs) == 1 and pairs[0].rejected == bad.response and pairs[0].rejected_index == 1
    assert pairs[0].turn_id == turn.id and pairs[0].chosen_score > pairs[0].rejected_score
    assert preference_pairs([turn], [good, bad], margin=0.99) == []


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"sft": {"epochs": 0}}, "sft.epochs"),
        ({"sample": {"candidates": 1}}, "sample.candidates"),
        ({"lora": {"rank": 8}}, "lora.rank"),
        ({"targets": "teacher"}, "(config)"),
    ],
)
def test_config_errors_name_the_field(settings, field):
    with pytest.raises(VoicetuneError) as error:
        load_config(None, settings)
    assert field in str(error.value)


def test_sample_gpu_config_resolves():
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "configs" / "gpu-qwen2.5-1.5b.yaml"
    config = load_config(path)
    assert config.model.count("/") == 1 and config.sft.max_examples is None


@pytest.mark.slow
def test_embedded_model_loads_offline_generates_and_trains_a_step(tmp_path, embedded_dir):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    turns = builtin_turns("test")[:2]
    backend = TransformersBackend("smollm2-135m", batch_size=2)
    result = generate_turns(
        backend, turns, tmp_path / "responses.jsonl", None, SamplingConfig(max_new_tokens=16), progress=False
    )
    assert all(t.response for t in result)
    data = tmp_path / "train.jsonl"
    write_records(data, builtin_turns("train")[:4])
    config = load_config(
        None, {"data": str(data), "sft": {"max_examples": 4, "batch_size": 4}, "dpo": {"enabled": False}}
    )
    summary = train(config, tmp_path / "run", log=lambda _: None)
    metrics = [json.loads(line) for line in (tmp_path / "run" / "train" / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in m for m in metrics)
    assert (tmp_path / "run" / "model" / "config.json").is_file() and summary["rounds"] == []


def test_default_config_file_matches_the_built_in_defaults():
    from pathlib import Path

    from voicetune.train import TrainConfig

    path = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
    assert load_config(path) == TrainConfig()


def test_generation_reuses_a_finished_output(tmp_path, tiny_model):
    turns = builtin_turns("test")[:3]
    output = tmp_path / "out.jsonl"
    write_records(output, [t.model_copy(update={"response": f"earlier {i}"}) for i, t in enumerate(turns[:2])])
    backend = TransformersBackend(tiny_model, batch_size=2)
    result = generate_turns(backend, turns, output, None, SamplingConfig(max_new_tokens=4), progress=False)
    assert [t.response for t in result[:2]] == ["earlier 0", "earlier 1"]  # kept, not regenerated
    assert result[2].response is not None and len(load_records(output)) == 3


# ---------------------------------------------------------------------------------------------------------
# Provenance: a re-run redoes exactly the steps whose inputs changed


def _steps_run(tmp_path, config) -> list[str]:
    return train(config, tmp_path, log=lambda _: None)["steps_run"]


_ALL_STEPS = ["targets", "sft", "round1_sample", "round1_score", "round1_pairs", "round1_dpo", "model"]

#: (the change, the steps it must rerun): the re-run matrix the README quotes. Steps are keyed by content,
#: so a step downstream of a redone one reruns only if its inputs' bytes changed; the rows below change them.
RERUN_MATRIX = [
    ({}, []),
    ({"dpo": {"margin": 0.0, "batch_size": 2, "beta": 0.2}}, ["round1_dpo", "model"]),
    (
        {"dpo": {"margin": 1.0, "batch_size": 2}},
        ["round1_pairs", "round1_dpo", "model"],
    ),  # only the hard negatives are left
    (
        {"dpo": {"margin": 1.0, "batch_size": 2, "hard_negatives": {"kinds": []}}},
        ["round1_pairs", "model"],
    ),  # no pair left: the SFT model is final
    (
        {"sample": {"contexts": 3, "candidates": 2, "max_new_tokens": 9, "batch_size": 6}},
        ["round1_sample", "round1_score", "round1_pairs", "round1_dpo", "model"],
    ),
    (
        {"sft": {"max_examples": 6, "epochs": 2, "batch_size": 3}},
        ["sft", "round1_sample", "round1_score", "round1_pairs", "round1_dpo", "model"],
    ),
    ({"sft": {"max_examples": 5, "epochs": 1, "batch_size": 3}}, _ALL_STEPS),
]


def test_a_changed_reward_rescores_without_resampling(tmp_path, tiny_model, trained_run):
    """New reward settings: the candidates are scored again and the pairs rebuilt; the policy is not retrained
    and nothing is sampled again (DPO and the final model follow only if the pairs' content changed)."""
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    ran = train(tiny_config(tiny_model, reward={"words_per_minute": 100.0}), run, log=lambda _: None)["steps_run"]
    assert ran[:2] == ["round1_score", "round1_pairs"]
    assert not {"targets", "sft", "round1_sample"} & set(ran)
    assert (run / "reward.yaml").is_file() and "words_per_minute: 100.0" in (run / "reward.yaml").read_text()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model):
    """One finished run of the tiny recipe; each re-run test works on a copy of it."""
    folder = tmp_path_factory.mktemp("base-run")
    assert _steps_run(folder, tiny_config(tiny_model)) == _ALL_STEPS
    return folder


@pytest.mark.parametrize("change, expected", RERUN_MATRIX, ids=lambda v: json.dumps(v) if isinstance(v, dict) else None)
def test_a_changed_field_reruns_exactly_the_steps_that_depend_on_it(
    tmp_path, tiny_model, trained_run, change, expected
):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    messages: list[str] = []
    summary = train(tiny_config(tiny_model, **change), run, log=messages.append)
    assert summary["steps_run"] == expected
    redone = [m for m in messages if "redoing" in m]
    assert len(redone) == len(expected), messages
    assert all("changed:" in m for m in redone)
    if expected:  # the superseded outputs are kept aside, not deleted
        assert list(run.rglob(".superseded/*/*"))


def test_a_changed_data_file_redoes_the_targets_and_everything_after(tmp_path, tiny_model):
    data = tmp_path / "data.jsonl"
    write_records(data, builtin_turns("train")[:8])
    run = tmp_path / "run"
    assert _steps_run(run, tiny_config(tiny_model, data=str(data))) == _ALL_STEPS
    write_records(data, builtin_turns("train")[1:9])
    assert _steps_run(run, tiny_config(tiny_model, data=str(data))) == _ALL_STEPS


def test_record_ids_with_separators_flow_through_training(tmp_path, tiny_model):
    turns = builtin_turns("train")[:6]
    odd = ["support#case-17", "a/b c", "x#c1", "ünïcödé 名前", "x", "x#c1#c0"]
    data = tmp_path / "odd.jsonl"
    write_records(data, [t.model_copy(update={"id": name}) for t, name in zip(turns, odd, strict=False)])
    summary = train(tiny_config(tiny_model, data=str(data)), tmp_path / "run", log=lambda _: None)
    assert summary["steps_run"][-1] == "model"
    from voicetune.records import Candidate

    candidates = load_records(tmp_path / "run" / "train" / "round1" / "candidates.jsonl", Candidate)
    assert {c.turn_id for c in candidates} <= set(odd) and len({c.id for c in candidates}) == len(candidates)


def test_scorer_config_file_matches_the_built_in_defaults():
    from pathlib import Path

    from voicetune.quality import ScorerConfig, load_scorer_config

    # The file names the NLI model 'auto' (the built-in default); the suite's environment turns NLI off by default.
    expected = ScorerConfig(meaning={"model": "auto"})
    assert load_scorer_config(Path(__file__).resolve().parents[1] / "configs" / "scorer.yaml") == expected


def test_every_config_field_is_documented():
    from voicetune.evaluate.config import EvalConfig
    from voicetune.settings import undocumented_fields
    from voicetune.train import TrainConfig

    assert undocumented_fields(TrainConfig) == [] and undocumented_fields(EvalConfig) == []


def test_help_config_lists_every_field(run_cli):
    result = run_cli("train", "--help-config")
    assert (
        result.returncode == 0
        and "sft.epochs" in result.stdout
        and "reward.faithfulness.invented_amount" in result.stdout
    )
    result = run_cli("eval", "--help-config")
    assert result.returncode == 0 and "judge.kind" in result.stdout and "seeds" in result.stdout


# ---------------------------------------------------------------------------------------------------------
# Hard negatives, contexts without references, the CPU speed-up


def test_hard_negatives_pair_each_target_with_a_corruption_of_it():
    from voicetune.train.recipe import hard_negative_pairs

    targets = [t for t in builtin_turns("train") if t.reference][:24]
    kinds = ["negation", "swap_amounts", "drop_fact", "repeat_sentence"]
    pairs = hard_negative_pairs(targets, kinds, contexts=16, per_context=2, seed=3)
    by_id = {t.id: t for t in targets}
    assert 16 < len(pairs) <= 32 and len({p.turn_id for p in pairs}) <= 16
    assert all(p.chosen == by_id[p.turn_id].reference and p.rejected != p.chosen for p in pairs)
    counts = Counter(p.rejected_source.removeprefix("corruption:") for p in pairs)
    assert set(counts) <= set(kinds) and len(counts) >= 3  # the kinds are spread, not one repeated
    assert pairs == hard_negative_pairs(targets, kinds, contexts=16, per_context=2, seed=3)  # seeded
    assert hard_negative_pairs(targets, [], contexts=16, per_context=2) == []
    # the reward sees most corruptions: the target scores higher on average
    assert sum(p.margin for p in pairs) > 0


def test_contexts_without_a_reference_pair_the_best_and_worst_candidates():
    from voicetune.quality import score_response
    from voicetune.records import Candidate

    turn = builtin_turns("train")[0].model_copy(update={"reference": None})
    texts = ["**Note:** " + (turn.draft or ""), builtin_turns("train")[0].reference]
    candidates = []
    for index, text in enumerate(texts):
        candidate = Candidate.model_validate(
            {**turn.model_dump(), "id": f"k{index}", "turn_id": turn.id, "candidate_index": index, "response": text}
        )
        candidate.scores = score_response(candidate, text).scores
        candidates.append(candidate)
    (pair,) = preference_pairs([turn], candidates, margin=0.05)
    assert pair.chosen_source == "candidate" and pair.chosen_index == 1 and pair.rejected_index == 0


def test_each_round_samples_fresh_contexts_and_extra_turns_lose_their_reference():
    from voicetune.train.recipe import sampling_contexts

    targets = [t for t in builtin_turns("train") if t.reference][:40]
    extra = builtin_turns("dev")[:30]
    config = load_config(None, {"sample": {"contexts": 8, "data_contexts": 5}})
    first, second = (sampling_contexts(config, targets, extra, n) for n in (1, 2))
    assert len(first) == len(second) == 13
    assert {t.id for t in first[:8]} != {t.id for t in second[:8]}
    assert all(t.reference is None for t in first[8:]) and all(t.reference for t in first[:8])
    assert sampling_contexts(config, targets, extra, 1) == first  # seeded


def test_sample_data_contexts_flow_through_a_round(tmp_path, tiny_model):
    data = tmp_path / "more.jsonl"
    write_records(data, [t.model_copy(update={"reference": None}) for t in builtin_turns("dev")[:4]])
    summary = train(
        tiny_config(
            tiny_model,
            sample={
                "contexts": 2,
                "candidates": 2,
                "max_new_tokens": 8,
                "batch_size": 8,
                "data": str(data),
                "data_contexts": 3,
            },
            dpo={"margin": 0.0, "batch_size": 2, "hard_negatives": {"kinds": []}},
        ),
        tmp_path / "run",
        log=lambda _: None,
    )
    assert summary["rounds"][0]["contexts"] == 5
    from voicetune.records import Candidate

    candidates = load_records(tmp_path / "run" / "train" / "round1" / "candidates.jsonl", Candidate)
    assert {c.turn_id for c in candidates} & {t.id for t in builtin_turns("dev")[:4]}


def test_scoring_only_completion_tokens_gives_the_same_loss(tiny_model):
    """The CPU speed-up (TRL's LM head over completion tokens only) changes no number of the loss."""
    import trl.trainer.utils as trl_utils

    from voicetune.train.recipe import _score_completion_tokens_only

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    input_ids = torch.randint(0, 200, (2, 12))
    labels = input_ids.clone()
    labels[:, :8] = -100  # the prompt
    original = trl_utils._use_triton
    try:
        every_position = model(input_ids=input_ids, labels=labels, fused_lm_head=True).loss
        _score_completion_tokens_only()
        assert trl_utils._use_triton(torch.device("cpu"))
        completion_only = model(input_ids=input_ids, labels=labels, fused_lm_head=True).loss
    finally:
        trl_utils._use_triton = original
    assert torch.allclose(every_position, completion_only, atol=1e-5)


def test_a_model_in_several_wheels_is_joined_once_and_its_hash_checked(tmp_path, monkeypatch):
    import hashlib

    from voicetune.models import loading

    parts = []
    for index, data in enumerate([b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7]):
        path = tmp_path / f"part0{index + 1}.bin"
        path.write_bytes(data)
        parts.append(path)
    joined_bytes = b"".join(p.read_bytes() for p in parts)
    monkeypatch.setenv("VOICETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(loading, "_wheel_file", lambda distribution, filename: tmp_path / filename)
    package = loading.Packaged(
        tuple((f"dist{i}", p.name) for i, p in enumerate(parts, 1)),
        "joined.gguf",
        hashlib.sha256(joined_bytes).hexdigest(),
        "pip install dist1 dist2 dist3",
    )
    monkeypatch.setitem(loading.EMBEDDED, "fake-model", package)
    path = loading.embedded_gguf("fake-model")
    assert path.read_bytes() == joined_bytes and path.parent == tmp_path / "cache" / "gguf"
    assert loading.embedded_gguf("fake-model") == path  # joined once
    monkeypatch.setitem(
        loading.EMBEDDED, "bad-model", loading.Packaged(package.parts, "bad.gguf", "0" * 64, package.install)
    )
    with pytest.raises(VoicetuneError, match="SHA-256"):
        loading.embedded_gguf("bad-model")
    assert not list((tmp_path / "cache" / "gguf").glob("*bad*"))  # nothing half-made is left
    monkeypatch.setattr(loading, "_wheel_file", lambda distribution, filename: None)
    with pytest.raises(VoicetuneError, match="pip install dist1"):
        loading.embedded_gguf("bad-model")


def test_cpu_quality_config_resolves_to_the_larger_policy():
    from pathlib import Path

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "cpu-quality.yaml")
    from voicetune.models.loading import EMBEDDED

    assert config.model in EMBEDDED and config.model != "smollm2-135m" and config.dpo.hard_negatives.kinds
