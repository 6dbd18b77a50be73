"""How much of a framed corpus is padding: examples, real tokens and the padded fraction, framed vs packed.

    python benchmarks/framing/padding.py [--dataset english-prose] [--seq_len 64 128]

Uses the default encoder's tokenizer (all-MiniLM-L6-v2) and the train split, as `latentlm train` does.
"""

import argparse
import json

from transformers import AutoTokenizer

from latentlm.data import load_text_dataset, tokenize_and_chunk
from latentlm.models.encoders import default_encoder_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="english-prose")
    parser.add_argument("--seq_len", type=int, nargs="+", default=[64, 128])
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(default_encoder_path())
    train = load_text_dataset(args.dataset, validation_split=0.05, seed=0)["train"]
    rows = []
    for seq_len in args.seq_len:
        for framing in (False, True):
            data = tokenize_and_chunk(train, tokenizer, seq_len, framing=framing).with_format("numpy")
            real = sum(int(batch["attention_mask"].sum()) for batch in data.iter(batch_size=4096))
            rows.append({"seq_len": seq_len, "framing": framing, "examples": len(data), "real_tokens": real,
                         "padded_fraction": round(1 - real / (len(data) * seq_len), 4)})  # fmt: skip
    print(json.dumps({"dataset": args.dataset, "documents": len(train), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
