"""Training: Hydra configs → typed settings → a Lightning run → one result record per model.

Import-light: torch and Lightning load only when a run starts (see run.train).
"""
