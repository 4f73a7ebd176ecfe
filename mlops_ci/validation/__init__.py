"""Statistical acceptance of a candidate model: the checks of `mlops-ci validate` (declared
in mlops-ci.yaml), the holdout, loading and scoring models, slices, data and robustness
checks, and the reports. The statistics themselves live in ``mlops_ci.stats``."""
