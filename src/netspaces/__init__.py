"""netspaces: design network design spaces (Radosavovic et al., CVPR 2020)."""

__version__ = "0.1.0"
