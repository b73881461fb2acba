#!/usr/bin/env python3
"""scikit-learn baseline for the lead scoring benchmark.

Trains two scikit-learn models on the same held-out split our Rust lead scoring
model uses, and prints their test ROC AUC and fit wall time as one JSON object:

    python3 bench/sklearn_baseline.py LEADS.csv > sklearn.json

    {"train_rows": .., "test_rows": ..,
     "random_forest": {"roc_auc": .., "train_seconds": ..},
     "hist_gradient_boosting": {"roc_auc": .., "train_seconds": ..},
     "sklearn_version": ".."}

Progress and diagnostics go to stderr, so stdout is only the JSON.

Dependencies: numpy and scikit-learn (the CSV is read with the standard `csv`
module; pandas is not needed). The benchmark installs them in a private venv:

    python3 -m venv "$WORK/venv" && "$WORK/venv/bin/pip" install scikit-learn
    "$WORK/venv/bin/python" bench/sklearn_baseline.py LEADS.csv

(scikit-learn pulls in numpy, scipy, joblib and threadpoolctl.)

Input: a CSV export of leads with at least `id` (integer), `status` and any
number of `custom.<key>` columns. Only `custom.*` columns are features; every
other column (first_name, email, created_at, ...) is ignored. Empty cells are
missing values.

The rules below are shared with the Rust side and must stay identical to it:

* Label: status "converted" -> 1; "lost" or "unqualified" -> 0; any other
  status drops the row.
* Split (stratified, deterministic): for each class separately, sort its rows by
  (splitmix64(id), id) ascending; the first floor(n_class / 5) rows are the test
  set, the rest are the training set.
* Column types: a custom column is numeric if every non-empty cell (over the
  labelled rows, train and test) parses as a finite float, else categorical.
  "Parses" follows Rust's `str::parse::<f64>` for finite values: an optional
  sign, digits with an optional decimal point, an optional exponent; no
  surrounding whitespace, no `_` separators (which Python's float() would
  accept), and inf/NaN/overflow do not count as finite.
* Models (fitted on the training rows only; categories are learned from them):
  - RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=0):
    numeric columns with missing -> -1, plus one-hot categoricals where
    "missing" is a category of its own and unseen test categories are all-zero
    (handle_unknown="ignore").
  - HistGradientBoostingClassifier(random_state=0): numeric columns with
    missing -> NaN (HGB handles NaN natively), plus categoricals as ordinal
    codes declared via categorical_features, missing (and unseen in test) -> NaN.
"""

import csv
import json
import math
import re
import sys
import time

import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.metrics import roc_auc_score

MASK64 = (1 << 64) - 1
POSITIVE = {"converted"}
NEGATIVE = {"lost", "unqualified"}
CUSTOM_PREFIX = "custom."
# Finite decimal floats as Rust's f64 parser accepts them (see the docstring).
FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# HistGradientBoosting bins a categorical feature into at most max_bins - 1 = 254
# category bins plus one missing bin, so ordinal codes must be < 255.
HGB_MAX_CATEGORIES = 255


def log(msg):
    print(f"[sklearn_baseline] {msg}", file=sys.stderr, flush=True)


def splitmix64(x):
    """splitmix64 finaliser over u64, identical to the Rust implementation."""
    z = (x + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def parse_finite(cell):
    """The cell's value if it is a finite float in Rust's syntax, else None."""
    if not FLOAT_RE.fullmatch(cell):
        return None
    value = float(cell)
    return value if math.isfinite(value) else None


def unguard(cell):
    """The cell as stored: MyCRM's export prefixes cells starting with = + - @ with a quote
    so spreadsheets don't run them as formulas ("-1" is exported as "'-1")."""
    if len(cell) > 1 and cell[0] == "'" and cell[1] in "=+-@":
        return cell[1:]
    return cell


def read_leads(path):
    """Labelled rows as (ids, labels, {custom column: [cells]})."""
    # utf-8-sig: tolerate a BOM that spreadsheet tools like to add.
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader)
        try:
            id_col, status_col = header.index("id"), header.index("status")
        except ValueError:
            sys.exit(f"{path}: the header needs an `id` and a `status` column")
        features = [(i, name) for i, name in enumerate(header) if name.startswith(CUSTOM_PREFIX)]
        if not features:
            sys.exit(f"{path}: no custom.* columns to use as features")
        ids, labels = [], []
        cells = {name: [] for _, name in features}
        dropped = 0
        for row in reader:
            status = row[status_col]
            if status in POSITIVE:
                labels.append(1)
            elif status in NEGATIVE:
                labels.append(0)
            else:
                dropped += 1
                continue
            ids.append(int(row[id_col]))
            for i, name in features:
                # Short rows (fewer cells than the header) count as empty cells.
                cells[name].append(unguard(row[i]) if i < len(row) else "")
    log(f"{len(ids)} labelled rows, {dropped} dropped (other status), {len(features)} custom columns")
    return ids, labels, cells


def stratified_split(ids, labels):
    """Row indices (train, test): per class, the first floor(n/5) by (splitmix64(id), id) are test."""
    train, test = [], []
    for cls in (0, 1):
        rows = [r for r, y in enumerate(labels) if y == cls]
        rows.sort(key=lambda r: (splitmix64(ids[r] & MASK64), ids[r]))
        n_test = len(rows) // 5
        test.extend(rows[:n_test])
        train.extend(rows[n_test:])
    # The models don't care about row order, but keep it stable and readable.
    return sorted(train), sorted(test)


def build_features(cells, train, test):
    """Feature matrices (rf_train, rf_test, hgb_train, hgb_test, hgb_categorical_mask)."""
    rf_train, rf_test, hgb_train, hgb_test, hgb_is_cat = [], [], [], [], []
    numeric_names, categorical_names = [], []
    for name, column in cells.items():
        parsed = [parse_finite(c) if c != "" else None for c in column]
        if all(v is not None for v, c in zip(parsed, column) if c != ""):
            numeric_names.append(name)
            # RF can't take NaN in every sklearn version we may meet, so missing -> -1
            # (the agreed sentinel); HGB learns where to send NaN at each split.
            rf_col = np.array([-1.0 if v is None else v for v in parsed])
            hgb_col = np.array([np.nan if v is None else v for v in parsed])
            rf_train.append(rf_col[train][:, None])
            rf_test.append(rf_col[test][:, None])
            hgb_train.append(hgb_col[train])
            hgb_test.append(hgb_col[test])
            hgb_is_cat.append(False)
            continue

        categorical_names.append(name)
        # Categories are learned from the training rows only; sorted so the
        # encoding is deterministic.
        train_cells = [column[r] for r in train]

        # RF: one-hot with "" (missing) as a category of its own. A test value never
        # seen in training gets all zeros, like OneHotEncoder(handle_unknown="ignore").
        onehot_cats = sorted(set(train_cells))
        index = {c: j for j, c in enumerate(onehot_cats)}
        for rows, out in ((train, rf_train), (test, rf_test)):
            block = np.zeros((len(rows), len(onehot_cats)))
            for k, r in enumerate(rows):
                j = index.get(column[r])
                if j is not None:
                    block[k, j] = 1.0
            out.append(block)

        # HGB: ordinal codes over the non-missing training categories; missing and
        # unseen categories are NaN, which HGB treats as its missing bin.
        ordinal_cats = sorted(set(train_cells) - {""})
        if len(ordinal_cats) > HGB_MAX_CATEGORIES:
            # HGB refuses more categories than that; keep the most frequent
            # (ties by value) and treat the rest as missing.
            counts = {}
            for c in train_cells:
                if c != "":
                    counts[c] = counts.get(c, 0) + 1
            kept = sorted(ordinal_cats, key=lambda c: (-counts[c], c))[:HGB_MAX_CATEGORIES]
            log(f"{name}: {len(ordinal_cats)} categories, HGB keeps the {HGB_MAX_CATEGORIES} "
                "most frequent and treats the rest as missing")
            ordinal_cats = sorted(kept)
        code = {c: float(j) for j, c in enumerate(ordinal_cats)}
        hgb_train.append(np.array([code.get(column[r], np.nan) for r in train]))
        hgb_test.append(np.array([code.get(column[r], np.nan) for r in test]))
        hgb_is_cat.append(True)

    log(f"numeric columns: {', '.join(numeric_names) or '-'}")
    log(f"categorical columns: {', '.join(categorical_names) or '-'}")
    return (
        np.hstack(rf_train),
        np.hstack(rf_test),
        np.column_stack(hgb_train),
        np.column_stack(hgb_test),
        np.array(hgb_is_cat),
    )


def fit_and_score(name, model, x_train, y_train, x_test, y_test):
    log(f"fitting {name} on {x_train.shape[0]} rows x {x_train.shape[1]} features")
    start = time.perf_counter()
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - start
    auc = roc_auc_score(y_test, model.predict_proba(x_test)[:, 1])
    log(f"{name}: ROC AUC {auc:.4f}, fit {seconds:.2f} s")
    return {"roc_auc": auc, "train_seconds": seconds}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: sklearn_baseline.py LEADS.csv")
    ids, labels, cells = read_leads(sys.argv[1])
    train, test = stratified_split(ids, labels)
    y = np.array(labels)
    y_train, y_test = y[train], y[test]
    if len(set(y_test)) < 2:
        sys.exit("the test set needs both classes (at least 5 rows per class) for ROC AUC")
    log(f"train {len(train)} rows ({int(y_train.sum())} converted), "
        f"test {len(test)} rows ({int(y_test.sum())} converted)")

    rf_train, rf_test, hgb_train, hgb_test, hgb_is_cat = build_features(cells, train, test)

    random_forest = fit_and_score(
        "RandomForestClassifier",
        RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=0),
        rf_train, y_train, rf_test, y_test,
    )
    hist_gradient_boosting = fit_and_score(
        "HistGradientBoostingClassifier",
        HistGradientBoostingClassifier(random_state=0, categorical_features=hgb_is_cat),
        hgb_train, y_train, hgb_test, y_test,
    )

    print(json.dumps({
        "train_rows": len(train),
        "test_rows": len(test),
        "random_forest": random_forest,
        "hist_gradient_boosting": hist_gradient_boosting,
        "sklearn_version": sklearn.__version__,
    }))


if __name__ == "__main__":
    main()
