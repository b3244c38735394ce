"""datatrove peer of `npm run bench:data`: its document pipeline (JsonlReader → DocumentTokenizer,
HF tokenizers, EOS after each document, no shuffle) over jsonl shards of the same documents cpt
tokenizes, with one task per shard on `workers` processes. Prints one JSON line: documents,
tokens (from the token files it wrote) and the pipeline's wall seconds (Python start-up and
imports excluded).

usage: datatrove_tokenize.py IN_DIR OUT_DIR TOKENIZER_JSON WORKERS
"""
import json
import sys
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.tokens import DocumentTokenizer


def main() -> None:
    src, out, tokenizer, workers = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    tasks = len(list(Path(src).glob("*.jsonl")))
    t0 = time.perf_counter()
    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(src, text_key="text", id_key="id"),
            DocumentTokenizer(str(out / "tokens"), tokenizer_name_or_path=tokenizer, eos_token="<|endoftext|>", shuffle_documents=False),
        ],
        tasks=tasks,
        workers=workers,
        logging_dir=str(out / "logs"),
        skip_completed=False,
    ).run()
    seconds = time.perf_counter() - t0
    # Token files hold uint16 ids; .index files the document ends (uint64 each).
    tokens = sum(f.stat().st_size for f in (out / "tokens").rglob("*.ds")) // 2
    docs = sum(f.stat().st_size for f in (out / "tokens").rglob("*.ds.index")) // 8
    print(json.dumps({"docs": docs, "tokens": tokens, "seconds": seconds}))


if __name__ == "__main__":
    main()
