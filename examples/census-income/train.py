"""Train the census-income classifier: does a person earn more than 50K a year?

A plain scikit-learn + MLflow script: it knows nothing of mlops-ci. Run under
`mlops-ci train`, the MLflow run it logs to is the one mlops-ci opened (MLFLOW_RUN_ID),
and the seed comes from MLOPS_CI_SEED; run alone, it starts a run of its own.
"""

import argparse
import os

import mlflow
import mlflow.sklearn
import pandas as pd
from mlflow.models import infer_signature
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CATEGORICAL = [
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native-country",
]
TARGET = "class"
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/train.csv")
    parser.add_argument(
        "--model", choices=["logistic-regression", "sgd", "random-forest"], default="logistic-regression"
    )
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--features", default="all", help="comma-separated feature columns to use, or 'all'")
    return parser.parse_args()


def build_pipeline(args: argparse.Namespace, numeric: list, categorical: list, seed: int) -> Pipeline:
    preprocess = ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ]
    )
    if args.model == "random-forest":
        classifier = RandomForestClassifier(n_estimators=args.n_estimators, random_state=seed, n_jobs=1)
    elif args.model == "sgd":
        # Logistic regression fitted by stochastic gradient descent: the seed decides the order
        # the rows are visited in, so each seed gives a different model of the same quality.
        classifier = SGDClassifier(loss="log_loss", random_state=seed)
    else:
        classifier = LogisticRegression(C=args.C, max_iter=args.max_iter, random_state=seed)
    return Pipeline([("preprocess", preprocess), ("classifier", classifier)])


def main() -> None:
    args = parse_args()
    seed = int(os.environ.get("MLOPS_CI_SEED", "0"))
    # keep_default_na=False: a missing value is the category "?", as in the source data.
    data = pd.read_csv(args.data, keep_default_na=False)
    columns = NUMERIC + CATEGORICAL if args.features == "all" else args.features.split(",")
    numeric = [c for c in NUMERIC if c in columns]
    categorical = [c for c in CATEGORICAL if c in columns]
    # The model takes every input column, so its signature is the same whichever it uses.
    features, target = data[NUMERIC + CATEGORICAL], data[TARGET]

    pipeline = build_pipeline(args, numeric, categorical, seed)
    with mlflow.start_run():
        pipeline.fit(features, target)
        probabilities = pipeline.predict_proba(features)[:, list(pipeline.classes_).index(">50K")]
        mlflow.log_metrics(
            {
                "train_accuracy": accuracy_score(target, pipeline.predict(features)),
                "train_roc_auc": roc_auc_score(target == ">50K", probabilities),
            }
        )
        example = features.head(5)
        mlflow.sklearn.log_model(
            pipeline,
            name="model",
            input_example=example,
            signature=infer_signature(example, pipeline.predict(example)),
            # MLflow saves with skops, which loads only types declared safe; a forest's trees
            # are our own, so they are declared here (and recorded in the model for loading).
            skops_trusted_types=TRUSTED_TYPES if args.model == "random-forest" else None,
        )
    print(f"trained {args.model} on {len(data)} rows")


if __name__ == "__main__":
    main()
