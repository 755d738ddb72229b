"""PyTorch models. Import torch only from here down; the design-space maths stays torch-free."""

from netspaces.models.anynet import AnyNet, build_model, init_weights

__all__ = ["AnyNet", "build_model", "init_weights"]
