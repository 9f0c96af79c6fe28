"""Tasks: what a model predicts (targets, head, loss, metrics, outputs). Registered in `hfft.registry`."""
