"""Small models and data the conversion tests share."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_ci.convert.columns import columns_from_frame
from mlops_ci.convert.loading import NativeModel


def numeric_data(rows=400, features=6, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, features)), columns=[f"f-{i}" for i in range(features)])
    target = (frame["f-0"] + 0.5 * frame["f-1"] > 0).astype(int)
    return frame, target


def native(model, frame):
    return NativeModel(
        model=model,
        flavor="sklearn",
        uri="test://m",
        columns=columns_from_frame(frame),
        input_example=frame.head(5),
    )
