"""Everything that talks to MLflow: the store, runs, fingerprints and the model registry.

mlflow itself is imported inside functions: `import mlflow` takes seconds, and commands
such as `mlops-ci --help` must not pay for it.
"""
