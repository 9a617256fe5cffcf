"""Generation speed: voicetune's transformers backend against a llama.cpp server, same model, same prompts.

Run: .venv/bin/python benchmarks/bench_backends.py [--prompts 32] [--max-new-tokens 64] [--batch-sizes 1 16]

Both generate a response for the first N built-in test prompts (sampling, temperature 0.7). New tokens are
counted with the model's tokenizer on the text each returns, so both are measured the same way. The server
is the embedded GGUF (Q4_1) through ``llama-cpp-python[server]``; the transformers backend runs the same
weights dequantised (fp32 / bf16 autocast as the backend chooses). Prints tokens/s and the ratio.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def tokens_per_second(backend, prompts, sampling, tokenizer) -> tuple[float, float]:
    started = time.perf_counter()
    texts = backend.generate(prompts, sampling)
    seconds = time.perf_counter() - started
    new_tokens = sum(len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in texts)
    return new_tokens / seconds, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--concurrency", type=int, default=1, help="parallel requests to the server")
    args = parser.parse_args()

    from voicetune.data import builtin_turns
    from voicetune.models.generate import HTTPBackend, SamplingConfig, TransformersBackend
    from voicetune.models.llama_server import LlamaServer
    from voicetune.models.loading import load_tokenizer
    from voicetune.models.prompts import build_messages

    prompts = [build_messages(t) for t in builtin_turns("test")[: args.prompts]]
    sampling = SamplingConfig(max_new_tokens=args.max_new_tokens, seed=0)
    tokenizer = load_tokenizer("smollm2-135m")
    print(f"{len(prompts)} prompts, at most {args.max_new_tokens} new tokens each, {os.cpu_count()} CPU cores")

    with LlamaServer(threads=os.cpu_count()) as url:
        server = HTTPBackend(url, "smollm2-135m", concurrency=args.concurrency)
        server.generate(prompts[:2], sampling)  # warm-up
        server_rate, server_seconds = tokens_per_second(server, prompts, sampling, tokenizer)
    print(
        f"llama.cpp server (Q4_1 GGUF, {args.concurrency} request(s) at a time): {server_rate:6.1f} new tokens/s "
        f"({server_seconds:.1f} s)"
    )

    for batch_size in args.batch_sizes:
        local = TransformersBackend("smollm2-135m", batch_size=batch_size)
        local.generate(prompts[:2], sampling)  # warm-up
        rate, seconds = tokens_per_second(local, prompts, sampling, tokenizer)
        print(
            f"transformers backend, batch {batch_size:>2}:              {rate:6.1f} new tokens/s ({seconds:.1f} s)  "
            f"ratio to the server {rate / server_rate:.2f}x"
        )


if __name__ == "__main__":
    main()
