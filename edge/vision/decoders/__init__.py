"""Output decoders: raw model tensors to detections in the model's input square (0..1)."""
