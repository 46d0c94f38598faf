"""Benchmark scoring core (spec §7): pure answer extraction, judging and aggregation.

- :mod:`multispa.metrics.parse`: a model response → a typed value (§7.1), deterministic, no LLM;
- :mod:`multispa.metrics.judge`: a parsed value + its record → correct / error / MRA (§7.2, §7.5);
- :mod:`multispa.metrics.rows`: the 12 rows of the paper's Table 2, the benchmark-subtask key and
  the paper's reference figures (§7.3, §7.4);
- :mod:`multispa.metrics.aggregate`: per-subtask and pooled per-row accuracy, the unweighted
  Average, MRA, parse failures and stratified percentile-bootstrap intervals;
- :mod:`multispa.metrics.score`: the scorer entry point (benchmark JSONL + predictions JSONL →
  JSON report, §7.6); the only module of the package that reads files;
- :mod:`multispa.metrics.reward`: the same parse and judge per completion, as a reward function
  with TRL's signature (RL fine-tuning with verifiable rewards, e.g. GRPO).

Nothing here imports model code; everything but :mod:`~multispa.metrics.score` is free of I/O.
"""
