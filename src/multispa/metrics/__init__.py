"""Benchmark scoring core (docs/metrics.md): pure answer extraction, judging and aggregation.

- :mod:`multispa.metrics.parse`: a model response → a typed value, deterministic, no LLM;
- :mod:`multispa.metrics.judge`: a parsed value + its record → correct / error / MRA;
- :mod:`multispa.metrics.rows`: the 12 rows of the paper's Table 2, the benchmark-subtask key and
  the paper's reference figures;
- :mod:`multispa.metrics.aggregate`: per-subtask and pooled per-row accuracy, the unweighted
  Average, MRA, parse failures and stratified percentile-bootstrap intervals;
- :mod:`multispa.metrics.score`: the scorer entry point (benchmark JSONL + predictions JSONL →
  JSON report); the only module of the package that reads files;
- :mod:`multispa.metrics.reward`: the same parse and judge per completion, as a reward function
  with TRL's signature (RL fine-tuning with verifiable rewards, e.g. GRPO).

Nothing here imports model code; everything but :mod:`~multispa.metrics.score` is free of I/O.
"""
