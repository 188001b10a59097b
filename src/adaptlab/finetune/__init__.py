"""Fine-tuning: training data formats and checks, LoRA training on the base model, export for llama.cpp."""
