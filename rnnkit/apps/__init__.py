"""Applications of the lecture, each a thin wiring of data, a model and training."""
