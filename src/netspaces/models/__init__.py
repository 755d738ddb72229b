"""PyTorch networks from typed arguments: AnyNet built from a layer plan (anynet), timm
baselines (baselines), and the timing of any of them (timing). Nothing here imports training
code or config objects; the design-space maths it reads (netspaces.space) is torch-free."""
