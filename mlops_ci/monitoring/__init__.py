"""Production monitoring: drift of the serving data (and predictions) against the training
reference, corrected for testing many features at once, with a JSON, markdown and PNG
report; the step `mlops-ci drift` adds the retraining trigger."""
