"""Analysis of trained populations: EDFs, KS tests, bootstrap good ranges, plots, report.

Pure numpy/pandas/matplotlib (scipy for the KS p-value); never imports training code.
Entry point: `analyze(...)`, which `netspaces analyze` (netspaces.cli) calls.
"""

__all__ = ["AnalyzeResult", "analyze"]


def __getattr__(name: str):  # lazy: importing the package (e.g. for the CLI) stays cheap
    if name in __all__:
        from netspaces.analysis import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
