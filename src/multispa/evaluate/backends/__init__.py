"""Model backends: OpenAI-compatible servers, local Hugging Face models, baselines, files."""
