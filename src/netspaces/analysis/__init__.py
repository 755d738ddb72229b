"""Analysis of trained populations: EDFs, KS tests, bootstrap good ranges, plots, report.

Pure numpy/pandas/matplotlib (scipy for the KS p-value); never imports training code.
Entry points: `analyze(...)` for scripts, `cli.register`/`cli.run` for `netspaces analyze`.
"""

from netspaces.analysis.cli import AnalyzeResult, analyze

__all__ = ["AnalyzeResult", "analyze"]
