"""Agreement statistics against published worked examples (../shared/data/agreement_reference)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stats.agreement import (
    _alpha_from_coincidence,
    alpha_interval,
    cohen_kappa,
    confusion,
    criterion_agreement,
    fleiss_interval,
    fleiss_kappa,
    kappa_from_confusion,
    krippendorff_alpha,
    pair_agreement,
    percent_agreement,
)
from tests.conftest import SHARED_DATA

REF = SHARED_DATA / "agreement_reference"
EXPECTED = json.loads((REF / "expected_values.json").read_text())


def _matrix(name: str) -> np.ndarray:
    return pd.read_csv(REF / name).iloc[:, 1:].to_numpy(float).T  # raters × units


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_2011_example_c(level):
    data = _matrix("krippendorff_2011_example_C.csv")
    expected = EXPECTED["krippendorff_2011_example_C.csv"][f"alpha_{level}"]
    assert round(krippendorff_alpha(data, level), 3) == pytest.approx(expected, abs=5e-4)
    est = alpha_interval(data, level, n_boot=300)
    assert est.low <= est.value <= est.high and est.n == 11


@pytest.mark.parametrize("level", ["nominal", "interval"])
def test_krippendorff_wikipedia(level):
    data = _matrix("krippendorff_wikipedia_example.csv")
    expected = EXPECTED["krippendorff_wikipedia_example.csv"][f"alpha_{level}"]
    assert krippendorff_alpha(data, level) == pytest.approx(expected, abs=5e-4)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_vectorised_alpha_matches_package_on_the_full_sample(level):
    """The bootstrap's coincidence-matrix formula gives the package's value when every unit counts once."""
    data = _matrix("krippendorff_2011_example_C.csv")
    keep = np.sum(np.isfinite(data), axis=0) >= 2
    d = data[:, keep]
    domain = np.unique(d[np.isfinite(d)])
    counts = np.stack([np.sum(d == v, axis=0) for v in domain], axis=1).astype(float)
    m = counts.sum(axis=1)
    o = ((counts[:, :, None] * counts[:, None, :] - counts[:, :, None] * np.eye(domain.size)) / (m - 1)[:, None, None]).sum(0)
    assert _alpha_from_coincidence(o[None], domain, level)[0] == pytest.approx(krippendorff_alpha(data, level), abs=1e-9)


def test_fleiss_wikipedia():
    counts = pd.read_csv(REF / "fleiss_wikipedia_example_counts.csv").iloc[:, 1:].to_numpy()
    assert round(fleiss_kappa(counts), 3) == EXPECTED["fleiss_wikipedia_example_counts.csv"]["kappa"]
    est = fleiss_interval(counts, n_boot=500)
    assert est.value == pytest.approx(0.20993, abs=1e-4) and est.low < est.value < est.high and est.n == 10


def _cohen_arrays():
    t = pd.read_csv(REF / "cohen_wikipedia_example_2x2.csv")
    code = {"yes": 1.0, "no": 0.0}
    a = np.concatenate([[code[r.rater_A]] * r.count for r in t.itertuples()])
    b = np.concatenate([[code[r.rater_B]] * r.count for r in t.itertuples()])
    return a, b


def test_cohen_wikipedia():
    a, b = _cohen_arrays()
    exp = EXPECTED["cohen_wikipedia_example_2x2.csv"]
    assert round(cohen_kappa(a, b), 3) == exp["kappa"]
    assert percent_agreement(a, b) == pytest.approx(exp["p_o"])
    assert confusion(a, b, [1.0, 0.0]).tolist() == [[20, 5], [10, 15]]
    res = pair_agreement(a, b, [0.0, 1.0], n_boot=1000)
    assert res["n"] == 50 and res["kappa"].value == pytest.approx(0.4)
    assert res["kappa"].low < 0.4 < res["kappa"].high


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_vectorised_kappa_matches_scikit_learn(weights):
    rng = np.random.default_rng(3)
    a = rng.integers(1, 6, 200).astype(float)
    b = np.clip(a + rng.integers(-1, 2, 200), 1, 5)
    labels = [1.0, 2.0, 3.0, 4.0, 5.0]
    conf = confusion(a, b, labels)
    assert kappa_from_confusion(conf, weights) == pytest.approx(cohen_kappa(a, b, weights, labels), abs=1e-12)


def test_criterion_agreement_counts_pairs_and_reports_n():
    """Simulated raters (not real labels): three humans and a judge on 40 binary units."""
    rng = np.random.default_rng(0)
    truth = (rng.random(40) < 0.6).astype(float)
    noisy = lambda p: np.where(rng.random(40) < p, 1 - truth, truth)
    ratings = {"ann": noisy(0.1), "bob": noisy(0.1), "cy": noisy(0.1), "judge": noisy(0.3)}
    ratings["cy"][:10] = np.nan
    res = criterion_agreement(ratings, level="nominal", labels=[0.0, 1.0], judge="judge", n_boot=300)
    kinds = sorted(p["kind"] for p in res.pairs)
    assert kinds.count("human-human") == 3 and kinds.count("judge-human") == 3
    assert all(p["raters"][0] == "judge" for p in res.pairs if p["kind"] == "judge-human")
    assert {p["n"] for p in res.pairs} == {40, 30}
    assert res.fleiss_humans is not None and res.fleiss_humans.n == 30
    assert res.alpha_humans.value > res.alpha_judge_vs_human.value
    two = criterion_agreement({"ann": ratings["ann"], "judge": ratings["judge"]}, level="nominal",
                              labels=[0.0, 1.0], judge="judge", n_boot=100)
    assert two.fleiss_humans is None and "three or more" in two.fleiss_note
