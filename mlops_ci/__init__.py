"""mlops-ci: CI/CD for machine-learning models, driven from GitHub Actions, GitLab CI or a laptop."""

__version__ = "0.1.0"
