"""Convert CLIP's BPE vocabulary into the vocab.json / merges.txt pair that transformers'
CLIPTokenizer reads, so the app tokenises prompts fully offline.

The source file, ``bpe_simple_vocab_16e6.txt.gz``, ships inside the ``open-clip-torch`` wheel
(the same data as OpenAI's CLIP repository). Run once; the output is committed in
``resources/tokenizers/clip``:

    pip download --no-deps open-clip-torch -d /tmp/oc && unzip -o /tmp/oc/*.whl -d /tmp/oc
    python packaging/make_clip_tokenizer.py /tmp/oc/open_clip/bpe_simple_vocab_16e6.txt.gz
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

VOCAB_SIZE = 49408
N_MERGES = VOCAB_SIZE - 256 * 2 - 2  # byte symbols, their end-of-word forms, two special tokens


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte-to-printable-character table, which CLIP's BPE is defined over."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bpe", type=Path, help="bpe_simple_vocab_16e6.txt.gz")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "resources/tokenizers/clip")
    args = parser.parse_args()

    lines = gzip.open(args.bpe).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : N_MERGES + 1]]
    assert all(len(m) == 2 for m in merges), "unexpected BPE file layout"
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == VOCAB_SIZE, len(vocab)

    args.out.mkdir(parents=True, exist_ok=True)
    encoder = {tok: i for i, tok in enumerate(vocab)}
    (args.out / "vocab.json").write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    (args.out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
    config = {
        "model_max_length": 77,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
        "clean_up_tokenization_spaces": True,
        "tokenizer_class": "CLIPTokenizer",
    }
    (args.out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(vocab)} tokens and {len(merges)} merges to {args.out}")


if __name__ == "__main__":
    main()
