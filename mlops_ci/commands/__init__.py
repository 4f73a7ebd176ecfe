"""The commands that are not steps: `mlops-ci report` and `mlops-ci serve`. Like the runner,
they sit above the steps and resolve their options through ``runner.resolve_options``."""
