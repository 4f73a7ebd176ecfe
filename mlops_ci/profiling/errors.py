"""What stops a profile, in profiling's own words. Each error keeps the facts it is about
as attributes, so that a caller can say which of its own settings to change (the profile
step names its flags); the message alone reads well where there is no such caller."""

from __future__ import annotations

from pathlib import Path

from mlops_ci.errors import ExternalServiceError, MlopsCiError, UsageError


class ProfilingError(MlopsCiError):
    """Base of the errors below; each is also a usage or an external-service error, which
    sets its exit code."""


class NothingToProfile(ProfilingError, UsageError):
    """No model, image or endpoint was given, and no earlier package or register left one."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        super().__init__(
            f"nothing to profile: no model, image or endpoint given, and no model from an earlier "
            f"`mlops-ci package` or `mlops-ci register` in {out_dir}; run `mlops-ci package` first"
        )


class EngineUnavailable(ProfilingError, ExternalServiceError):
    """The container engine the profile must use does not answer."""

    def __init__(self, why: str) -> None:
        self.why = why
        super().__init__(f"no container engine to run the image: {why}; start Docker (DOCKER_HOST)")


class NoRequestBody(ProfilingError, UsageError):
    """An endpoint with no model to build a request from and no request body given."""

    def __init__(self, endpoint: str | None) -> None:
        self.endpoint = endpoint
        super().__init__(
            f"no request to send to {endpoint}: give a JSON request body, or the model so the request is "
            "built from its input example"
        )


class NoRequestPath(ProfilingError, UsageError):
    """A request body with no model to name the path it goes to, and no path given."""

    def __init__(self) -> None:
        super().__init__("a request body needs the path it goes to when there is no model to name it")


class NoInputExample(ProfilingError, UsageError):
    """The model has no (complete) input example, so no request can be built for it."""

    def __init__(self, model: str, missing: tuple[str, ...] = ()) -> None:
        self.model = model
        self.missing = missing
        if missing:
            text = (
                f"the input example of {model} lacks column(s) {', '.join(missing[:5])}; log the model "
                "with a complete input_example"
            )
        else:
            text = (
                f"model {model} has no input example, so no request can be built for it; log the model "
                "with an input_example"
            )
        super().__init__(text)


class GeneratorUnavailable(ProfilingError, UsageError):
    """The load generator asked for is not installed."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"load generator {name}: {name} is not installed; install it (apt-get install {name}, brew install "
            f"{name}) or use the python generator"
        )


class EndpointNotReady(ProfilingError, ExternalServiceError):
    """A running server that never answered ready within the retry budget."""

    def __init__(self, url: str, *, last: str, attempts: int, elapsed_s: float) -> None:
        self.url = url
        self.last = last
        self.attempts = attempts
        self.elapsed_s = elapsed_s
        super().__init__(f"{self.what}; check the URL and that the server runs, or allow more time to retry")

    @property
    def what(self) -> str:
        return (
            f"endpoint {self.url} is not ready ({self.last}) after {self.attempts} tries in "
            f"{self.elapsed_s:.0f} s"
        )
