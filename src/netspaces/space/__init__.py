"""The design-space maths, torch-free: plain Python and numpy, testable in milliseconds.

spec (NetSpec: per-stage widths, depths, groups, bottlenecks) → plan (the layer plan that
both the PyTorch builder, netspaces.models, and the analytic counter, complexity, read);
regnet (the quantized linear rule); spaces (AnyNetX_A…E, RegNetX/Y: bulk candidate draws);
regimes (flop windows); sampling (seeded populations inside a regime); fit (e_fit); zoo
(the paper's models by name); table1 (Table 1 from the space definitions).
"""
