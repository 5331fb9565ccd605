"""Encoding speed of the models `SUPPORT_NLP_EMBEDDING_MODEL` can name, on real tweets, backend "auto" on CPU.

    python -m support_nlp.benchmarks.encoder_speed [--rows 3000] [--models all-MiniLM-L6-v2,...]

Per model: the time to build the encoder and embed one text (loading weights; for the ONNX encoder reading an
existing export, which the first ever run makes), then `--rows` distinct cleaned real inbound tweets of the bundled
sample (a seeded draw, `static_backend.default_fit_texts`) encoded twice, cold and warm, without the vector cache:
wall seconds, process CPU seconds (all threads) and texts per wall second. The machine is shared, so the load
average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd

from support_nlp.core.encoders import BUNDLED_MODEL_NAME, load_encoder
from support_nlp.core.encoders.static_backend import default_fit_texts
from support_nlp.core.encoders.use_multilingual import MODEL_NAME as USE_MULTILINGUAL
from support_nlp.core.parallel import available_cores

DEFAULT_MODELS = (BUNDLED_MODEL_NAME, USE_MULTILINGUAL)


def timed(work) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def speed_rows(models: list[str], texts: list[str]) -> list[dict]:
    rows = []
    for model in models:
        encoder = None

        def load(model=model):
            nonlocal encoder
            encoder = load_encoder(model, "auto", "cpu")
            encoder.encode(texts[:1])

        load_wall, _ = timed(load)
        row = {"model": model, "encoder": encoder.identity, "load + 1 text s": round(load_wall, 1)}
        for run in ("cold", "warm"):
            wall, cpu = timed(lambda encoder=encoder: encoder.encode(texts))
            row |= {
                f"{run} wall s": round(wall, 1),
                f"{run} CPU s": round(cpu, 1),
                f"{run} texts/s": round(len(texts) / wall),
            }
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=3000, help="distinct real tweets to encode (default 3000)")
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS), help="comma-separated model names")
    args = parser.parse_args(argv)
    texts = default_fit_texts(args.rows)
    before = os.getloadavg()[0]
    table = pd.DataFrame(speed_rows(args.models.split(","), texts))
    print(
        f"\n{len(texts):,} distinct real tweets, {available_cores()} cores, load average {before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after\n"
    )
    print(table.set_index("model").T.to_markdown())


if __name__ == "__main__":
    main()
