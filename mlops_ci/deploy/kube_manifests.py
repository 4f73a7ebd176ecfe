"""Kubernetes manifests for the serving image, and their offline validation.

``deployment``: a Deployment (rolling update that never drops below the wanted replicas,
readiness on ``/v2/health/ready``, liveness on ``/v2/health/live``, non-root, read-only
root filesystem, Prometheus scrape annotations), a Service, a HorizontalPodAutoscaler
(autoscaling/v2, CPU) and a PodDisruptionBudget. ``kserve``: one KServe InferenceService
(serving.kserve.io/v1beta1) whose predictor is the same container, which speaks the Open
Inference Protocol (V2) natively.

Progressive delivery (``render_progressive``): ``deployment`` gets a second Deployment
and Service ``NAME-canary`` running the new image beside the stable ``NAME``, and a
Gateway API HTTPRoute ``NAME`` (gateway.networking.k8s.io/v1) that splits the traffic by
``backendRefs`` weights (canary), or sends it all to ``NAME`` with a ``RequestMirror``
filter copying each request to ``NAME-canary`` (shadow). ``kserve`` sets
``canaryTrafficPercent`` on the predictor in Serverless mode (KServe splits traffic
between the latest and the previous ready revision only with Knative; RawDeployment has
no canary). One set of manifests per step.

Core objects are validated against the official Kubernetes JSON schemas of the chosen
version (shipped by the kubernetes-validate package; strict: unknown fields are errors).
KServe's and the Gateway API's CRD schemas are not shipped with any package, so the
InferenceService and the HTTPRoute are checked against our own schemas of the fields we
render, whose embedded core types
(Container, resources, probes) are the official Kubernetes definitions.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops_ci.deploy.errors import SettingError
from mlops_ci.errors import UsageError

SERVING_PORT = 8080
MANAGED_BY = "mlops-ci"
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|[KMGTPE]i?|[kMGTPE])?$")
DEFAULTS = {"cpu-request": "250m", "cpu-limit": "1", "memory-request": "256Mi", "memory-limit": "512Mi"}
DEFAULT_REPLICAS = 2


@dataclass(frozen=True)
class Resources:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    replicas: int
    max_replicas: int
    source: str  # "profile", "flags", "defaults" or a mix

    def requirements(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


@dataclass(frozen=True)
class Sizing:
    """Resources asked for (or recommended by a profile); None: not said, the next source decides."""

    cpu_request: str | None = None
    cpu_limit: str | None = None
    memory_request: str | None = None
    memory_limit: str | None = None
    replicas: int | None = None
    max_replicas: int | None = None


def resources(asked: Sizing | None = None, recommended: Sizing | None = None) -> Resources:
    """What was asked first (source "flags"), then the profile's recommendation, then
    defaults; every quantity checked."""
    asked = asked or Sizing()
    recommended = recommended or Sizing()
    sources = set()
    values = {}
    for key in ("cpu-request", "cpu-limit", "memory-request", "memory-limit"):
        field_name = key.replace("-", "_")
        wanted, suggested = getattr(asked, field_name), getattr(recommended, field_name)
        if wanted:
            values[key], origin = str(wanted), "flags"
        elif suggested:
            values[key], origin = str(suggested), "profile"
        else:
            values[key], origin = DEFAULTS[key], "defaults"
        if not QUANTITY.match(values[key]):
            raise UsageError(
                f"{key} {values[key]!r} (from {origin}) is not a Kubernetes quantity such as 500m or 256Mi"
            )
        sources.add(origin)
    replicas = asked.replicas
    if replicas is None and recommended.replicas is not None:
        replicas, _ = recommended.replicas, sources.add("profile")
    replicas = int(replicas or DEFAULT_REPLICAS)
    max_replicas = int(asked.max_replicas or max(replicas * 4, replicas + 1))
    if max_replicas < replicas:
        raise SettingError("max-replicas", f"{max_replicas} is below the replicas {replicas}")
    return Resources(
        values["cpu-request"],
        values["cpu-limit"],
        values["memory-request"],
        values["memory-limit"],
        replicas,
        max_replicas,
        "+".join(sorted(sources)),
    )


@dataclass(frozen=True)
class Spec:
    """What to render."""

    name: str
    namespace: str
    image: str
    resources: Resources
    kind: str = "deployment"  # deployment | kserve
    cpu_target: int = 70
    model_uri: str | None = None
    version: str | None = None
    image_digest: str | None = None
    commit: str | None = None
    pull_secret: str | None = None
    progress_deadline_s: int = 600
    annotations: Mapping[str, str] = field(default_factory=dict)


def check_name(name: str, setting: str = "name") -> str:
    """``name`` when it is a valid Kubernetes object name (a DNS label); else a SettingError
    for ``setting``."""
    if len(name) > 63 or not NAME.match(name):
        raise SettingError(
            setting,
            f"{name!r} is not a valid Kubernetes name: lowercase letters, digits and '-', at most 63 "
            "characters, starting and ending with a letter or digit",
        )
    return name


def kube_name(model_name: str) -> str:
    """A model name made into a Kubernetes name (census_income.v2 -> census-income-v2)."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")[:63].strip("-")
    return name or "model"


def image_ref(image: str, digest: str | None) -> str:
    """Pin the image by digest when the digest is a registry digest (repo@sha256:...)."""
    if digest and digest.startswith("sha256:") and "@" not in image:
        repository = image.rsplit(":", 1)[0] if image.rfind(":") > image.rfind("/") else image
        return f"{repository}@{digest}"
    return image


def _labels(spec: Spec) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/managed-by": MANAGED_BY}
    if spec.version:
        labels["app.kubernetes.io/version"] = f"v{spec.version}"
    return labels


def _annotations(spec: Spec) -> dict[str, str]:
    notes = {
        "mlops-ci/model-uri": spec.model_uri,
        "mlops-ci/image-digest": spec.image_digest,
        "mlops-ci/commit": spec.commit,
    }
    notes = {key: value for key, value in notes.items() if value}
    notes.update(spec.annotations)
    return notes


def _container(spec: Spec, image: str) -> dict[str, Any]:
    return {
        "name": "server",
        "image": image,
        "ports": [{"name": "http", "containerPort": SERVING_PORT, "protocol": "TCP"}],
        "resources": spec.resources.requirements(),
        "readinessProbe": {
            "httpGet": {"path": "/v2/health/ready", "port": SERVING_PORT},
            "periodSeconds": 5,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "httpGet": {"path": "/v2/health/live", "port": SERVING_PORT},
            "initialDelaySeconds": 10,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "startupProbe": {
            "httpGet": {"path": "/v2/health/live", "port": SERVING_PORT},
            "periodSeconds": 2,
            "failureThreshold": 60,
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def render(spec: Spec) -> list[dict[str, Any]]:
    check_name(spec.name)
    check_name(spec.namespace, "namespace")
    image = image_ref(spec.image, spec.image_digest)
    if spec.kind == "kserve":
        return [_inference_service(spec, image)]
    if spec.kind != "deployment":
        raise SettingError("kind", f"must be deployment or kserve, got {spec.kind!r}")
    labels = _labels(spec)
    selector = {"app.kubernetes.io/name": spec.name}
    meta = {"name": spec.name, "namespace": spec.namespace, "labels": labels}
    notes = _annotations(spec)
    if notes:
        meta["annotations"] = notes
    pod_annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(SERVING_PORT),
        "prometheus.io/path": "/metrics",
    }
    pod_spec: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        # The server drains in-flight requests for 30 s after SIGTERM.
        "terminationGracePeriodSeconds": 40,
        "containers": [_container(spec, image)],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    if spec.pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": spec.pull_secret}]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": copy.deepcopy(meta),
        "spec": {
            "replicas": spec.resources.replicas,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": spec.progress_deadline_s,
            "selector": {"matchLabels": dict(selector)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": dict(labels), "annotations": pod_annotations},
                "spec": pod_spec,
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": copy.deepcopy(meta),
        "spec": {
            "type": "ClusterIP",
            "selector": dict(selector),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": copy.deepcopy(meta),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": spec.resources.replicas,
            "maxReplicas": spec.resources.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": spec.cpu_target},
                    },
                }
            ],
        },
    }
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": copy.deepcopy(meta),
        # One pod at a time may be evicted (a drain never takes the service down).
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": dict(selector)}},
    }
    return [deployment, service, autoscaler, budget]


def render_progressive(
    spec: Spec, *, strategy: str, percent: int, gateway: str | None
) -> list[dict[str, Any]]:
    """The manifests of one progressive step: ``percent`` of the traffic to the new image
    (canary), or a copy of it (shadow, ``percent`` ignored). ``gateway``: the Gateway the
    HTTPRoute attaches to (deployment kind only)."""
    if strategy not in ("canary", "shadow"):
        raise SettingError("strategy", f"must be canary or shadow here, got {strategy!r}")
    if not 0 <= percent <= 100:
        raise SettingError("canary-steps", f"must be percentages from 0 to 100, got {percent}")
    if spec.kind == "kserve":
        if strategy == "shadow":
            raise SettingError(
                "strategy", "shadow is not available with KServe; use canary, or kind deployment"
            )
        service = render(spec)[0]
        service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Serverless"
        service["spec"]["predictor"]["canaryTrafficPercent"] = percent
        return [service]
    if not gateway:
        raise SettingError(
            "gateway", "is needed for a canary or shadow on Kubernetes: the Gateway the route attaches to"
        )
    check_name(gateway, "gateway")
    canary_name = f"{spec.name}-canary"
    if len(canary_name) > 63:
        raise SettingError("name", f"{spec.name!r} is too long for its canary objects ({canary_name!r})")
    canary_spec = dataclasses.replace(spec, name=canary_name)
    deployment, service = render(canary_spec)[:2]
    backend = {"group": "", "kind": "Service", "port": 80}
    rule: dict[str, Any]
    if strategy == "canary":
        rule = {
            "backendRefs": [
                {**backend, "name": spec.name, "weight": 100 - percent},
                {**backend, "name": canary_name, "weight": percent},
            ]
        }
    else:
        rule = {
            "backendRefs": [{**backend, "name": spec.name, "weight": 100}],
            "filters": [
                {"type": "RequestMirror", "requestMirror": {"backendRef": {**backend, "name": canary_name}}}
            ],
        }
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": _labels(spec),
            "annotations": {"mlops-ci/strategy": strategy, "mlops-ci/canary-percent": str(percent)},
        },
        "spec": {
            "parentRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway}],
            "rules": [rule],
        },
    }
    return [deployment, service, route]


def _inference_service(spec: Spec, image: str) -> dict[str, Any]:
    container = _container(spec, image)
    container["name"] = "kserve-container"
    # KServe adds its own probes and routes; keep only the readiness check of the model.
    for probe in ("livenessProbe", "startupProbe"):
        container.pop(probe)
    predictor: dict[str, Any] = {
        "minReplicas": spec.resources.replicas,
        "maxReplicas": spec.resources.max_replicas,
        "scaleMetric": "cpu",
        "scaleTarget": spec.cpu_target,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }
    if spec.pull_secret:
        predictor["imagePullSecrets"] = [{"name": spec.pull_secret}]
    annotations = {
        # Plain Deployment + Service, no Knative needed; scrape the server's own /metrics.
        "serving.kserve.io/deploymentMode": "RawDeployment",
        "serving.kserve.io/enable-prometheus-scraping": "true",
        **_annotations(spec),
    }
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": _labels(spec),
            "annotations": annotations,
        },
        "spec": {"predictor": predictor},
    }


# --- validation --------------------------------------------------------------------------

DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"


def _core(name: str) -> dict[str, str]:
    return {"$ref": f"{DEFINITIONS_ID}#/$defs/io.k8s.api.core.v1.{name}"}


INFERENCE_SERVICE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://mlops-ci.dev/schemas/kserve-inferenceservice-v1beta1.json",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "serving.kserve.io/v1beta1"},
        "kind": {"const": "InferenceService"},
        "metadata": {"$ref": f"{DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {
            "type": "object",
            "required": ["predictor"],
            "additionalProperties": False,
            "properties": {
                "predictor": {
                    "type": "object",
                    "required": ["containers"],
                    "additionalProperties": False,
                    "properties": {
                        "minReplicas": {"type": "integer", "minimum": 0},
                        "maxReplicas": {"type": "integer", "minimum": 0},
                        "scaleMetric": {"enum": ["cpu", "memory", "concurrency", "rps"]},
                        "scaleTarget": {"type": "integer", "minimum": 1},
                        "containers": {"type": "array", "minItems": 1, "items": _core("Container")},
                        "volumes": {"type": "array", "items": _core("Volume")},
                        "imagePullSecrets": {"type": "array", "items": _core("LocalObjectReference")},
                        "serviceAccountName": {"type": "string"},
                        "canaryTrafficPercent": {"type": "integer", "minimum": 0, "maximum": 100},
                    },
                }
            },
        },
    },
}


_NAME_FIELD = {"type": "string", "minLength": 1, "maxLength": 253}
_BACKEND_REF: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "group": {"type": "string", "maxLength": 253},
        "kind": {"type": "string", "minLength": 1, "maxLength": 63},
        "name": _NAME_FIELD,
        "namespace": {"type": "string", "minLength": 1, "maxLength": 63},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    },
}

# gateway.networking.k8s.io/v1 HTTPRoute, the fields we render (types and bounds as in the
# Gateway API's CRD: weight 0..1000000, at most 16 backendRefs, 32 parentRefs, 16 rules).
HTTP_ROUTE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://mlops-ci.dev/schemas/gateway-httproute-v1.json",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
        "kind": {"const": "HTTPRoute"},
        "metadata": {"$ref": f"{DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "parentRefs": {
                    "type": "array",
                    "maxItems": 32,
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "group": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": _NAME_FIELD,
                            "namespace": {"type": "string"},
                            "sectionName": {"type": "string"},
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                        },
                    },
                },
                "hostnames": {"type": "array", "maxItems": 16, "items": {"type": "string"}},
                "rules": {
                    "type": "array",
                    "maxItems": 16,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "backendRefs": {
                                "type": "array",
                                "maxItems": 16,
                                "items": {
                                    **_BACKEND_REF,
                                    "properties": {
                                        **_BACKEND_REF["properties"],
                                        "weight": {"type": "integer", "minimum": 0, "maximum": 1000000},
                                    },
                                },
                            },
                            "filters": {
                                "type": "array",
                                "maxItems": 16,
                                "items": {
                                    "type": "object",
                                    "required": ["type"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "type": {
                                            "enum": [
                                                "RequestHeaderModifier",
                                                "ResponseHeaderModifier",
                                                "RequestMirror",
                                                "RequestRedirect",
                                                "URLRewrite",
                                                "ExtensionRef",
                                            ]
                                        },
                                        "requestMirror": {
                                            "type": "object",
                                            "required": ["backendRef"],
                                            "additionalProperties": False,
                                            "properties": {"backendRef": _BACKEND_REF},
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def validate(manifests: list[dict[str, Any]], *, version: str) -> list[str]:
    """Problems found (empty: valid), each naming the object and the field."""
    try:
        import kubernetes_validate
        from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, VersionNotSupportedError
    except ImportError:
        raise UsageError(
            "validating Kubernetes manifests needs kubernetes-validate: pip install 'kubernetes-validate>=1.28' (part of mlops-ci's dependencies)"
        ) from None
    if not re.match(r"^\d+\.\d+(\.\d+)?$", version):
        raise SettingError("kubernetes-version", f"must look like 1.30, got {version!r}")
    from kubernetes_validate.utils import all_versions
    from packaging.version import Version

    known = all_versions()
    wanted = Version(".".join(version.split(".")[:2]))
    if (
        not Version(".".join(known[0].split(".")[:2]))
        <= wanted
        <= Version(".".join(known[-1].split(".")[:2]))
    ):
        raise SettingError(
            "kubernetes-version",
            f"{version} is outside the schemas kubernetes-validate ships ({known[0]} to {known[-1]}); "
            "choose one in that range",
        )
    problems = []
    for manifest in manifests:
        what = f"{manifest.get('kind')}/{(manifest.get('metadata') or {}).get('name')}"
        if manifest.get("apiVersion", "").startswith("serving.kserve.io/"):
            problems.extend(
                f"{what}: {p}" for p in _validate_custom(manifest, version, INFERENCE_SERVICE_SCHEMA)
            )
            continue
        if manifest.get("apiVersion", "").startswith("gateway.networking.k8s.io/"):
            problems.extend(f"{what}: {p}" for p in _validate_custom(manifest, version, HTTP_ROUTE_SCHEMA))
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except ValidationError as error:
            path = ".".join(str(part) for part in error.path) or "(top level)"
            problems.append(f"{what}: {path}: {error.message}")
        except SchemaNotFoundError as error:
            problems.append(f"{what}: {error.message}")
        except VersionNotSupportedError:
            raise SettingError(
                "kubernetes-version",
                f"{version} has no schemas in kubernetes-validate {kubernetes_validate.__version__}; "
                "choose another version",
            ) from None
    return problems


def _validate_custom(manifest: dict[str, Any], version: str, schema: dict[str, Any]) -> list[str]:
    import jsonschema
    from kubernetes_validate.utils import all_versions, major_minor, schema_contents
    from referencing import Registry, Resource

    known = [v for v in all_versions() if major_minor(v) <= major_minor(version)] or all_versions()
    definitions = schema_contents(
        f"kubernetes-json-schema/v{known[-1]}-local-strict/_definitions.json", version
    )
    registry = Registry().with_resources(
        [
            (DEFINITIONS_ID, Resource.from_contents(definitions)),
            (schema["$id"], Resource.from_contents(schema)),
        ]
    )
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path)))
    ]


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    import yaml

    return "".join("---\n" + yaml.safe_dump(m, sort_keys=False) for m in manifests)
