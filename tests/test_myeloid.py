"""The embedded myeloid dataset reproduces the known outcomes of Krumsiek et al. 2011."""

from __future__ import annotations

import numpy as np
import pytest

from gclandscape._keys import Key

FATES = ("Ery", "Mk", "Gran", "Mono")
# lost fates under asynchronous Boolean updating (../shared/data/krumsiek11/README)
EXPECTED_LOST = {
    "Gata2": set(),
    "Gata1": {"Ery", "Mk"},
    "Fog1": set(),
    "EKLF": {"Ery"},
    "Fli1": {"Mk"},
    "SCL": set(),
    "Cebpa": {"Gran"},
    "Pu.1": {"Gran", "Mono"},
    "cJun": {"Mono"},
    "EgrNab": {"Mono"},
    "Gfi1": {"Gran"},
}


@pytest.fixture(scope="module")
def myeloid():
    import gclandscape as gcl

    return gcl.datasets.myeloid()


def test_shape_and_labels(myeloid):
    assert myeloid.shape == (3000, 311)
    assert myeloid.var[Key.var.regulator].sum() == 11
    assert list(myeloid.var_names[:3]) == ["Gata2", "Gata1", "Fog1"]
    counts = myeloid.obs[Key.obs.celltype].value_counts()
    assert set(counts.index) == {"progenitor", *FATES}
    assert (counts / counts.sum()).min() > 0.05  # every fate and progenitors are present
    truth = myeloid.uns[Key.uns.truth]
    np.testing.assert_array_equal(truth["initial"], [1, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0])


def test_wild_type_reaches_all_four_fates(myeloid):
    wt = myeloid.uns[Key.uns.truth]["wt_fate_fractions"]
    for fate in FATES:
        assert wt.get(fate, 0.0) >= 0.05, (fate, wt)
    assert sum(wt[f] for f in FATES) > 0.9


def test_fate_patterns_are_the_known_attractors(myeloid):
    pats = myeloid.uns[Key.uns.truth]["fate_patterns"]
    high = {f: set(pats.columns[pats.loc[f].to_numpy() == 1]) for f in FATES}
    assert high["Ery"] == {"Gata1", "Fog1", "EKLF", "SCL"}
    assert high["Mk"] == {"Gata1", "Fog1", "Fli1", "SCL"}
    assert high["Gran"] == {"Cebpa", "Pu.1", "Gfi1"}
    assert high["Mono"] == {"Cebpa", "Pu.1", "cJun", "EgrNab"}


@pytest.mark.parametrize("gene", list(EXPECTED_LOST))
def test_knockout_outcome(myeloid, gene):
    truth = myeloid.uns[Key.uns.truth]
    lost = set(truth["knockout_lost_fates"][gene].split(",")) - {""}
    assert lost == EXPECTED_LOST[gene]
    frac = truth["knockout_fate_fractions"].loc[gene]
    for fate in FATES:
        if fate in EXPECTED_LOST[gene]:
            assert frac.get(fate, 0.0) == 0.0  # structurally unreachable
        else:
            assert frac.get(fate, 0.0) >= 0.05, (gene, fate, frac.to_dict())


def test_novel_states_of_the_boolean_model(myeloid):
    # Boolean reference: Gata1 KO also reaches Cebpa+Gata2+Gfi1, Pu.1 KO reaches Cebpa+Gfi1
    novel = myeloid.uns[Key.uns.truth]["knockout_novel_fates"]
    assert novel["Gata1"] == "novel:Gata2+Cebpa+Gfi1"
    assert novel["Pu.1"] == "novel:Cebpa+Gfi1"


def test_myeloid_rules_match_the_published_rules(shared_data):
    from gclandscape.datasets._myeloid import myeloid_network
    from gclandscape.datasets._rules import read_rules

    ours = myeloid_network()
    ref = read_rules(shared_data / "krumsiek11" / "krumsiek11.txt")
    assert ours.genes == ref.genes
    assert ours.rules == ref.rules
