"""Split data/adult.csv into the fixed train/holdout files of this example.

The split is stratified on the target and seeded, so running this again reproduces
data/train.csv and data/holdout.csv byte for byte.
"""

from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

HERE = Path(__file__).parent
SPLIT_SEED = 20261125
HOLDOUT_FRACTION = 0.2


def main() -> None:
    data = pd.read_csv(HERE / "data" / "adult.csv", keep_default_na=False)
    train, holdout = train_test_split(
        data, test_size=HOLDOUT_FRACTION, stratify=data["class"], random_state=SPLIT_SEED
    )
    train.to_csv(HERE / "data" / "train.csv", index=False)
    holdout.to_csv(HERE / "data" / "holdout.csv", index=False)
    print(f"train: {len(train)} rows, holdout: {len(holdout)} rows")


if __name__ == "__main__":
    main()
