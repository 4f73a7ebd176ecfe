"""The drift report: JSON (everything), markdown (for the job summary and people), and a
PNG of the features that moved most (reference vs current distributions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_ci.monitoring.detect import DriftReport, Verdict
from mlops_ci.result import write_text_atomic

if TYPE_CHECKING:
    import pandas as pd

MAX_PLOTS = 6


def markdown(report: DriftReport, *, title: str = "Drift") -> str:
    data = report.to_dict()
    icon = "❌" if report.drifted else "✅"
    drifted = report.drifted_features
    headline = (
        f"drift in {len(drifted)} of {data['features_tested']} features: {', '.join(drifted)}"
        if drifted
        else f"no drift in {data['features_tested']} features"
    )
    if report.prediction_drift:
        headline += "; the predictions drifted"
    window = report.window.interval() or "all of it"
    lines = [
        f"### {icon} {title}: {headline}",
        "",
        f"Reference: {report.reference_rows:,} rows ({_code(report.reference_source)}) · current: "
        f"{report.current_rows:,} rows ({_code(report.current_source)}), window {window}",
        "",
        f"Benjamini–Hochberg at false-discovery rate {report.alpha:g} across "
        f"{sum(1 for v in report.verdicts if v.test.pvalue is not None)} tests; a feature drifts when its "
        "adjusted p-value is at most that and its PSI (or Wasserstein distance, in reference standard "
        "deviations) reaches its threshold.",
        "",
        "| feature | test | statistic | p (adjusted) | PSI | Wasserstein (sd) | missing ref → cur | decision |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    order = sorted(
        report.verdicts,
        key=lambda v: (not v.drifted, v.adjusted_pvalue if v.adjusted_pvalue is not None else 2),
    )
    for verdict in order:
        lines.append(_row(verdict))
    unseen = [v for v in report.verdicts if v.test.unseen_categories]
    if unseen:
        lines += ["", "Categories never seen in the reference:", ""]
        for verdict in unseen:
            shown = ", ".join(_code(c) for c in verdict.test.unseen_categories[:10])
            more = len(verdict.test.unseen_categories) - 10
            lines.append(
                f"- **{verdict.name}**: {shown}{f' and {more} more' if more > 0 else ''} "
                f"({verdict.test.unseen_share:.2%} of current rows)"
            )
    return "\n".join(lines) + "\n"


def _row(v: Verdict) -> str:
    t = v.test
    name = (
        {"prediction": "*predictions*", "prediction_score": "*prediction scores*"}.get(v.name, v.name)
        if v.prediction
        else v.name
    )
    if t.skipped:
        return f"| {name} | — | | | | | | ⏭️ {t.skipped} |"
    decision = "❌ drifted" if v.drifted else ("⚠️ small shift" if v.significant else "✅ stable")
    w = f"{t.wasserstein:.3f}" if t.wasserstein is not None else ""
    return (
        f"| {name} | {'KS' if t.test == 'ks' else 'χ²'} | {t.statistic:.4g} | {t.pvalue:.2g} ({v.adjusted_pvalue:.2g}) "
        f"| {t.psi:.3f} | {w} | {t.reference_missing:.1%} → {t.current_missing:.1%} | {decision} |"
    )


def _code(text: str) -> str:
    return f"`{text}`" if text and "`" not in text else text


def write_reports(
    report: DriftReport, reference: pd.DataFrame, current: pd.DataFrame, folder: Path, *, title: str
) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "drift-report.json", "markdown": folder / "drift-report.md"}
    write_text_atomic(paths["json"], json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    write_text_atomic(paths["markdown"], markdown(report, title=title))
    png = folder / "drift-report.png"
    if plot(report, reference, current, png):
        paths["png"] = png
    return paths


def plot(report: DriftReport, reference: pd.DataFrame, current: pd.DataFrame, path: Path) -> bool:
    """Reference vs current for the features that moved most; False when nothing was tested."""
    ranked = sorted(
        (v for v in report.verdicts if v.test.skipped is None),
        key=lambda v: (not v.drifted, -(v.test.psi or 0.0)),
    )[:MAX_PLOTS]
    if not ranked:
        return False
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    columns = min(3, len(ranked))
    rows = -(-len(ranked) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for axis in axes.ravel()[len(ranked) :]:
        axis.set_visible(False)
    for axis, verdict in zip(axes.ravel(), ranked, strict=False):
        name = verdict.name
        ref, cur = reference[name], current[name]
        if verdict.test.kind == "numeric":
            ref = pd.to_numeric(ref, errors="coerce").dropna().to_numpy()
            cur = pd.to_numeric(cur, errors="coerce").dropna().to_numpy()
            low, high = np.nanpercentile(np.concatenate([ref, cur]), [0.5, 99.5])
            bins = np.linspace(low, high if high > low else low + 1, 31)
            axis.hist(ref, bins=bins, density=True, alpha=0.5, label="reference", color="#4c72b0")
            axis.hist(cur, bins=bins, density=True, alpha=0.5, label="current", color="#dd8452")
        else:
            ref_share = ref.astype(str).value_counts(normalize=True)
            cur_share = cur.astype(str).value_counts(normalize=True)
            top = (ref_share.add(cur_share, fill_value=0)).sort_values(ascending=False).index[:10]
            x = np.arange(len(top))
            axis.bar(x - 0.2, [ref_share.get(c, 0) for c in top], 0.4, label="reference", color="#4c72b0")
            axis.bar(x + 0.2, [cur_share.get(c, 0) for c in top], 0.4, label="current", color="#dd8452")
            axis.set_xticks(x, [str(c)[:12] for c in top], rotation=45, ha="right", fontsize=7)
        mark = "DRIFT " if verdict.drifted else ""
        axis.set_title(
            f"{mark}{name}\nPSI {verdict.test.psi:.3f}, adj. p {verdict.adjusted_pvalue:.2g}", fontsize=9
        )
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True
