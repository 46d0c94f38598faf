"""Per-scene and per-clip caches written by ``multispa prepare`` and read by the generators."""
