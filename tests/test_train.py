"""Post-training mechanics on a tiny randomly initialised Llama (seconds), and one slower test on the
embedded model (load offline, generate, one training step)."""

from __future__ import annotations

import json
import os

import pytest

from voicetune.data import builtin_turns
from voicetune.errors import VoicetuneError
from voicetune.models.generate import SamplingConfig, TransformersBackend, generate_turns
from voicetune.models.loading import resolve_model
from voicetune.records import load_records, write_records
from voicetune.train import load_config, preference_pairs, train

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("trl")


def tiny_config(tiny_model: str, **overrides):
    settings = {
        "model": tiny_model, "max_length": 256, "precision": "fp32",
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
    pairs = [json.loads(line) for line in (tmp_path / "train" / "round1" / "dpo_pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen_score"] - p["rejected_score"] > 0 for p in pairs)
    metrics = [json.loads(line) for line in (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()]
    assert {m["stage"] for m in metrics} == {"sft", "dpo"}
    # the trained model is a plain Hugging Face directory that generate loads
    backend = TransformersBackend(str(model_dir), batch_size=2)
    texts = backend.generate([[{"role": "user", "content": "hello"}]] * 2, SamplingConfig(max_new_tokens=5))
    assert len(texts) == 2


def test_a_killed_run_resumes_without_redoing_finished_steps(tmp_path, tiny_model):
    config = tiny_config(tiny_model)
    train(config, tmp_path, log=lambda _: None)
    candidates = tmp_path / "train" / "round1" / "candidates.jsonl"
    stamp = candidates.stat().st_mtime_ns
    # simulate a kill during DPO: its output and the final model are missing
    import shutil

    shutil.rmtree(tmp_path / "train" / "round1" / "dpo")
    shutil.rmtree(tmp_path / "model")
    messages: list[str] = []
    train(config, tmp_path, log=messages.append)
    assert "SFT: done already" in messages
    assert candidates.stat().st_mtime_ns == stamp  # sampling was not redone
    assert (tmp_path / "model" / "config.json").is_file()


def test_generation_resumes_from_partial_rows(tmp_path, tiny_model):
    turns = builtin_turns("test")[:4]
    output = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    partial.write_text(json.dumps({"id": turns[0].id, "response": "kept from the first run"}) + "\n" + '{"id": "cut sho')
    backend = TransformersBackend(tiny_model, batch_size=2)
    result = generate_turns(backend, turns, output, None, SamplingConfig(max_new_tokens=6), progress=False)
    assert [t.id for t in result] == [t.id for t in turns]
    assert result[0].response == "kept from the first run"
    assert not partial.exists() and len(load_records(output)) == 4


def test_preference_pairs_keep_only_margins_above_the_threshold():
    from voicetune.quality import score_response

    turn = builtin_turns("train")[0]
    good = turn.model_copy(update={"id": f"{turn.id}#c0", "response": turn.reference})
    bad = turn.model_copy(update={"id": f"{turn.id}#c1", "response": "**Note:** " + (turn.draft or "")})
    for candidate in (good, bad):
        result = score_response(candidate, candidate.response)
        candidate.scores = result.scores
    pairs = preference_pairs([turn], [good, bad], margin=0.05)
    assert len(pairs) == 1 and pairs[0]["rejected"] == bad.response
    assert pairs[0]["chosen_score"] > pairs[0]["rejected_score"]
    assert preference_pairs([turn], [good, bad], margin=0.99) == []


@pytest.mark.parametrize(
    "settings, field",
    [({"sft": {"epochs": 0}}, "sft.epochs"), ({"sample": {"candidates": 1}}, "sample.candidates"), ({"lora": {"rank": 8}}, "lora.rank"), ({"targets": "teacher"}, "(config)")],
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
    result = generate_turns(backend, turns, tmp_path / "responses.jsonl", None, SamplingConfig(max_new_tokens=16), progress=False)
    assert all(t.response for t in result)
    data = tmp_path / "train.jsonl"
    write_records(data, builtin_turns("train")[:4])
    config = load_config(None, {"data": str(data), "sft": {"max_examples": 4, "batch_size": 4}, "dpo": {"enabled": False}})
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
