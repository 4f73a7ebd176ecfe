"""The other steps' outputs the comment reads, each key named once here, by the step that
writes it. A step's ``Output`` declarations (mlops_ci/steps) are the source; a test checks
that every key below is one of them, so renaming an output fails there, not silently in a
comment that stops showing it."""

from __future__ import annotations

from typing import Final


class Train:
    STEP: Final = "train"
    RUN_URL: Final = "run-url"


class Register:
    STEP: Final = "register"
    MODEL_NAME: Final = "model-name"
    MODEL_VERSION: Final = "model-version"
    MODEL_VERSION_URL: Final = "model-version-url"


class Validate:
    STEP: Final = "validate"
    CANDIDATE_URI: Final = "candidate-uri"
    CANDIDATE_VERSION: Final = "candidate-version"
    BASELINE_URI: Final = "baseline-uri"
    BASELINE_VERSION: Final = "baseline-version"
    FIRST_MODEL: Final = "first-model"
    HOLDOUT_ROWS: Final = "holdout-rows"


class Package:
    STEP: Final = "package"
    IMAGE: Final = "image"
    IMAGE_BUILT: Final = "image-built"
    IMAGE_DIGEST: Final = "image-digest"
    IMAGE_SIZE_BYTES: Final = "image-size-bytes"
    ONNX_PATH: Final = "onnx-path"
    BUILD_CONTEXT: Final = "build-context"
    MODEL_URI: Final = "model-uri"


class Profile:
    STEP: Final = "profile"
    THROUGHPUT_RPS: Final = "throughput-rps"
    P50_MS: Final = "p50-ms"
    P99_MS: Final = "p99-ms"
    CPU_REQUEST: Final = "cpu-request"
    CPU_LIMIT: Final = "cpu-limit"
    MEMORY_REQUEST: Final = "memory-request"
    MEMORY_LIMIT: Final = "memory-limit"
    REPLICAS: Final = "replicas"
    TARGET_RPS: Final = "target-rps"
    SLO_P99_MS: Final = "slo-p99-ms"
    SERVER: Final = "server"
    LOAD_GENERATOR: Final = "load-generator"
    GENERATOR_CEILING_RPS: Final = "generator-ceiling-rps"
    INPROCESS_P50_MS: Final = "inprocess-p50-ms"


PRODUCERS: Final = (Train, Register, Validate, Package, Profile)


def keys(producer: type) -> dict[str, str]:
    """The output keys a producer class names, by constant name (STEP aside)."""
    return {
        name: value
        for name, value in vars(producer).items()
        if name.isupper() and name != "STEP" and isinstance(value, str)
    }
