#!/usr/bin/env python
"""Run rows of the benchmark matrix and regenerate BENCHMARKS.md (a thin wrapper of `interest-llm benchmark`).

Each (data set, model, seed) row is one `interest-llm train` process (1 torch thread, no baselines inside the row),
appended to benchmarks/results.json as soon as it finishes; BENCHMARKS.md is regenerated from that file.

    python scripts/benchmark.py --dataset ml-100k --models ours,gru4rec --seeds 0,1,2
    python scripts/benchmark.py --dataset ml-100k,ml-latest-small,online-retail --models all --seeds 0,1,2 --skip-done
    python scripts/benchmark.py --report-only
    python scripts/benchmark.py --dataset ml-100k --models ours --seeds 0 -- --hidden 64   # extra `train` options

MovieLens is read from $INTEREST_LLM_DATA (or --data-dir), never copied into the repository. Several benchmark
processes may share one results file (each write is locked); run at most one per CPU core, since every row is timed.
"""
import os, sys
from pathlib import Path

if __name__ == '__main__':
    root = Path(__file__).resolve().parents[1]
    os.chdir(root)                                    # results/markdown paths are relative to the repository
    from interest_llm.cli import main
    main(['benchmark', *sys.argv[1:]])
