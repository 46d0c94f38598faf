"""Evaluation: benchmark items → model backends → predictions → scores (``multispa eval``)."""
