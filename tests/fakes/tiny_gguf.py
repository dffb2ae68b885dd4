"""A tiny random-weight llama GGUF model, for driving a real inference server in tests.

The model is nonsense, but it is a *valid* llama-architecture GGUF with a SentencePiece-style
("llama") byte-fallback vocabulary, so llama.cpp loads it, tokenizes any prompt, and generates
tokens at thousands per second on a CPU. It is written in a few milliseconds (~0.5 MB, f32).

Two things are arranged so that the output is useful to protocol tests:

* Every generated token is a printable "normal" token (letters, digits, punctuation, "▁word"
  pieces). Byte tokens (<0x00>..<0xFF>) and control tokens (<unk>, <s>, </s>) are pushed far
  down, so the server never holds text back waiting for the rest of a UTF-8 sequence, and
  the model never emits EOS: generation always runs until max_tokens (finish_reason "length").
* The push-down is not left to luck: dimension 0 of the residual stream carries a constant
  (every token embedding has it, and no layer writes to it), so after the final RMS norm it is
  a large positive feature, and `output.weight[:, 0]` is strongly negative for the suppressed
  tokens and mildly positive for the normal ones.

Only `gguf` and `numpy` are needed (the `test` extra).
"""

from __future__ import annotations

import pathlib
import string

import numpy as np

import gguf
from gguf.constants import MODEL_ARCH, MODEL_ARCH_NAMES, MODEL_TENSOR, TENSOR_NAMES, TokenType

# Model shape: small enough to write instantly and to generate thousands of tokens per second.
N_EMBD = 64
N_LAYER = 2
N_HEAD = 4
N_HEAD_KV = 4
N_FF = 128
N_CTX = 512
SEED = 1234

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SPACE = "\u2581"  # SentencePiece's "▁", which stands for a space before a word

# Printable pieces the model can produce. Words carry the "▁" prefix like a real SPM vocabulary.
_WORDS = (
    "the of and to in is it that for on with as was at by be this are or from not but have "
    "def return if else import class self None True False print value data list dict str int "
    "code line file name model test error open read write make run get set new use all one"
).split()
_CHARS = string.ascii_letters + string.digits + "()[]{}.,:;=+-*/_'\"#<>!?"

# How hard the suppressed tokens are pushed down (logit units, before temperature).
_SUPPRESS = 30.0
_RESIDUAL_CONST = 6.0


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    """The token strings, scores and types of the tiny model, in id order."""
    tokens: list[str] = ["<unk>", "<s>", "</s>"]
    types: list[int] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    scores: list[float] = [0.0, 0.0, 0.0]
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(TokenType.BYTE)
        scores.append(0.0)
    pieces = [SPACE] + list(_CHARS) + [SPACE + w for w in _WORDS]
    seen = set(tokens)
    for piece in pieces:
        if piece in seen:
            continue
        seen.add(piece)
        tokens.append(piece)
        types.append(TokenType.NORMAL)
        # SPM merge priority: longer pieces score higher, so whole words win when they match.
        scores.append(-1000.0 + 10.0 * len(piece))
    return tokens, scores, [int(t) for t in types]


def write_tiny_model(path: pathlib.Path) -> pathlib.Path:
    """Write the tiny llama GGUF to `path` (a file name) and return the path."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tokens, scores, types = vocabulary()
    n_vocab = len(tokens)
    rng = np.random.default_rng(SEED)

    def randn(*shape: int, scale: float) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def name(tensor: MODEL_TENSOR, bid: int | None = None) -> str:
        base = TENSOR_NAMES[tensor]
        return (base.format(bid=bid) if bid is not None else base) + ".weight"

    arch = MODEL_ARCH_NAMES[MODEL_ARCH.LLAMA]
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name("ai_host tiny test model")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(n_vocab)
    writer.add_context_length(N_CTX)
    writer.add_embedding_length(N_EMBD)
    writer.add_block_count(N_LAYER)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD_KV)
    writer.add_rope_dimension_count(N_EMBD // N_HEAD)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)

    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_unk_token_id(UNK_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)

    # Embeddings: random, plus the constant feature in dimension 0 (see the module docstring).
    token_embd = randn(n_vocab, N_EMBD, scale=1.0)
    token_embd[:, 0] = _RESIDUAL_CONST
    writer.add_tensor(name(MODEL_TENSOR.TOKEN_EMBD), token_embd)

    ones = np.ones(N_EMBD, dtype=np.float32)
    for bid in range(N_LAYER):
        writer.add_tensor(name(MODEL_TENSOR.ATTN_NORM, bid), ones.copy())
        # numpy shape is (out, in); gguf stores it reversed, as ggml's ne = [in, out].
        writer.add_tensor(name(MODEL_TENSOR.ATTN_Q, bid), randn(N_EMBD, N_EMBD, scale=0.3))
        writer.add_tensor(name(MODEL_TENSOR.ATTN_K, bid), randn(N_EMBD, N_EMBD, scale=0.3))
        writer.add_tensor(name(MODEL_TENSOR.ATTN_V, bid), randn(N_EMBD, N_EMBD, scale=0.3))
        attn_out = randn(N_EMBD, N_EMBD, scale=0.1)
        attn_out[0, :] = 0.0  # nothing writes to the constant dimension
        writer.add_tensor(name(MODEL_TENSOR.ATTN_OUT, bid), attn_out)
        writer.add_tensor(name(MODEL_TENSOR.FFN_NORM, bid), ones.copy())
        writer.add_tensor(name(MODEL_TENSOR.FFN_GATE, bid), randn(N_FF, N_EMBD, scale=0.3))
        writer.add_tensor(name(MODEL_TENSOR.FFN_UP, bid), randn(N_FF, N_EMBD, scale=0.3))
        ffn_down = randn(N_EMBD, N_FF, scale=0.1)
        ffn_down[0, :] = 0.0
        writer.add_tensor(name(MODEL_TENSOR.FFN_DOWN, bid), ffn_down)

    writer.add_tensor(name(MODEL_TENSOR.OUTPUT_NORM), ones.copy())
    output = randn(n_vocab, N_EMBD, scale=1.0)
    normal = np.array([t == TokenType.NORMAL for t in types])
    output[~normal, :] = 0.0
    output[~normal, 0] = -_SUPPRESS
    output[normal, 0] = 0.5
    writer.add_tensor(name(MODEL_TENSOR.OUTPUT), output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


if __name__ == "__main__":  # python tests/fakes/tiny_gguf.py /tmp/tiny.gguf
    import sys

    print(write_tiny_model(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tiny.gguf")))
