"""Question generation: subtask table, prompt/answer templates and answer formatting."""
