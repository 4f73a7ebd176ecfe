"""XGBoost and LightGBM inside scikit-learn pipelines: their converters come from
onnxmltools and are registered with skl2onnx when both libraries are installed."""

from __future__ import annotations

import importlib.util
from functools import cache

from mlops_ci.convert import UnsupportedModelError

BOOSTER_MODULES = ("xgboost", "lightgbm")


def is_booster(estimator: object) -> bool:
    return type(estimator).__module__.split(".")[0] in BOOSTER_MODULES


@cache
def register_booster_converters() -> tuple[str, ...]:
    """Register what is installed; returns the registered estimator names."""
    registered: list[str] = []
    if importlib.util.find_spec("onnxmltools") is None:
        return ()
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    if importlib.util.find_spec("xgboost") is not None:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor

        update_registered_converter(
            XGBClassifier,
            "XGBoostXGBClassifier",
            calculate_linear_classifier_output_shapes,
            convert_xgboost,
            options=classifier_options,
        )
        update_registered_converter(
            XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes, convert_xgboost
        )
        registered += ["XGBClassifier", "XGBRegressor"]
    if importlib.util.find_spec("lightgbm") is not None:
        from lightgbm import LGBMClassifier, LGBMRegressor
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

        update_registered_converter(
            LGBMClassifier,
            "LightGbmLGBMClassifier",
            calculate_linear_classifier_output_shapes,
            convert_lightgbm,
            options=classifier_options,
        )
        update_registered_converter(
            LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes, convert_lightgbm
        )
        registered += ["LGBMClassifier", "LGBMRegressor"]
    return tuple(registered)


def require_booster_support(estimator: object) -> None:
    name = type(estimator).__name__
    if name not in register_booster_converters():
        raise UnsupportedModelError(
            f"{name} needs onnxmltools to convert to ONNX; install it (pip install onnxmltools) "
            "in the environment that runs mlops-ci package",
            estimator=name,
        )
