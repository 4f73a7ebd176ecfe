"""Applying to a cluster (mlops_ci/deploy/kube_apply.py): the rollout state read from the
status a Deployment and an InferenceService report, objects made fit to apply again, the
history object, and the kubeconfig checks. (No API server can run here; see
tests/steps/test_deploy.py for an unreachable one.)"""

from __future__ import annotations

import json

import pytest

from mlops_ci.deploy import kube_apply, kube_manifests
from mlops_ci.deploy.errors import SettingError


def deployment(generation=2, observed=2, replicas=3, updated=3, available=3, total=3, conditions=()):
    return {
        "kind": "Deployment",
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
            "conditions": list(conditions),
        },
    }


@pytest.mark.parametrize(
    ("obj", "state", "words"),
    [
        (deployment(observed=1), "progressing", "controller"),
        (deployment(updated=1, total=4), "progressing", "1 of 3 replicas updated"),
        (deployment(total=4), "progressing", "1 old replicas pending"),
        (deployment(available=2), "progressing", "2 of 3 updated replicas available"),
        (deployment(), "done", "3 of 3"),
        (
            deployment(
                updated=1,
                conditions=[
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": "RS timed out",
                    }
                ],
            ),
            "failed",
            "progress deadline: RS timed out",
        ),
        (
            {
                "kind": "InferenceService",
                "metadata": {"generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "url": "http://m.ml.example",
                },
            },
            "done",
            "m.ml.example",
        ),
        (
            {
                "kind": "InferenceService",
                "metadata": {"generation": 1},
                "status": {
                    "observedGeneration": 1,
                    "conditions": [
                        {
                            "type": "PredictorReady",
                            "status": "False",
                            "reason": "RevisionFailed",
                            "message": "bad",
                        }
                    ],
                },
            },
            "failed",
            "RevisionFailed",
        ),
    ],
)
def test_rollout_state(obj, state, words):
    result = kube_apply.rollout_state(obj)
    assert result.state == state and words in result.message


def test_clean_drops_what_the_server_owns():
    found = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "m",
            "uid": "u",
            "resourceVersion": "5",
            "generation": 3,
            "managedFields": [],
            "creationTimestamp": "t",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": {"replicas": 2},
        "status": {"replicas": 2},
    }
    assert kube_apply.clean(found) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "m"},
        "spec": {"replicas": 2},
    }
    history = kube_apply.history_manifest("m", "ml", {"current": json.dumps([])})
    assert kube_manifests.validate([history], version="1.30") == []


def test_a_missing_kubeconfig_names_the_setting(tmp_path):
    with pytest.raises(SettingError) as caught:
        kube_apply.connect(tmp_path / "nope", None)
    assert caught.value.setting == "kubeconfig"
    assert str(caught.value) == f"kubeconfig {tmp_path / 'nope'} does not exist"
