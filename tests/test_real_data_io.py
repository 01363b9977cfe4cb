"""Every dataset in ``../shared/data`` read through ``gcl.io.read``, as a user would read it.

The expected shapes, names and truth are taken from the files themselves with the standard
library's csv module (independently of the loader) or from ``../shared/data/README.md``.
These tests skip when ``../shared/data`` is absent (``shared_data`` fixture).
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from scipy import sparse

import gclandscape as gcl
from gclandscape._keys import Key

pytestmark = pytest.mark.shared_data

BEELINE = [
    "dyn-BFC_2000_0",
    "dyn-BF_2000_0",
    "dyn-CY_2000_0",
    "dyn-LI_2000_0",
    "dyn-LL_2000_0",
    "dyn-TF_2000_0",
    "mCAD_2000_0",
    "mCAD_2000_0_50",
]


def _dense(X) -> np.ndarray:
    return X.toarray() if sparse.issparse(X) else np.asarray(X)


def test_paul15_counts(shared_data):
    adata = gcl.io.read(shared_data / "paul15" / "paul15_240genes.h5ad")
    assert adata.shape == (2660, 240)
    counts = _dense(adata.layers[Key.layers.counts])
    np.testing.assert_array_equal(counts, _dense(adata.X))
    assert np.all(counts == np.round(counts))
    assert counts.min() >= 0
    assert counts.sum() > 0
    types = adata.obs[Key.obs.celltype]
    assert set(types.unique()) == {
        "Multipotent progenitors",
        "GMP",
        "Erythrocyte",
        "Megakaryocytes",
        "Monocytes",
        "Neutrophils",
        "Basophils",
    }
    assert types.value_counts()["Erythrocyte"] == 1095
    genes = set(adata.var_names)
    assert {"Klf1", "Zfpm1", "Irf8", "Myb", "Mpo", "Elane", "Car1"} <= genes
    assert not {"Gata1", "Spi1", "Cebpa"} & genes
    # the Erythrocyte marker Car1 is higher in erythrocytes than in monocytes
    car1 = counts[:, list(adata.var_names).index("Car1")]
    assert (
        car1[(types == "Erythrocyte").to_numpy()].mean()
        > car1[(types == "Monocytes").to_numpy()].mean()
    )


def _csv_rows(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


@pytest.mark.parametrize("name", BEELINE)
def test_beeline_folder(shared_data, name):
    folder = shared_data / "beeline" / name
    expr = _csv_rows(folder / "ExpressionData.csv")
    cells, genes = expr[0][1:], [row[0] for row in expr[1:]]
    pseudo = _csv_rows(folder / "PseudoTime.csv")
    edges = _csv_rows(folder / "refNetwork.csv")[1:]

    adata = gcl.io.read(folder)
    assert adata.shape == (len(cells), len(genes))
    assert adata.n_obs == 2000
    assert list(adata.obs_names) == cells
    assert list(adata.var_names) == genes
    # spot-check values against the text (genes × cells in the file)
    for gi, ci in [(0, 0), (len(genes) - 1, len(cells) - 1), (len(genes) // 2, 777)]:
        assert adata.X[ci, gi] == float(expr[gi + 1][ci + 1])
    assert Key.layers.counts not in adata.layers  # BoolODE output is continuous

    # PseudoTime: one obs column per lineage, NaN where the cell is not on it
    header = pseudo[0][1:] if pseudo[0][0] == "" else pseudo[0]
    body = {row[0]: row[1:] for row in pseudo[1:]}
    for j, col in enumerate(header):
        assert col in adata.obs.columns
        expected = [math.nan if body[c][j] in ("", "NA") else float(body[c][j]) for c in cells]
        np.testing.assert_array_equal(adata.obs[col].to_numpy(), expected)
    on_some_lineage = adata.obs[header].notna().any(axis=1)
    assert on_some_lineage.all()

    # the signed reference network
    net = adata.uns[Key.uns.reference_network]
    assert len(net) == len(edges)
    assert net["source"].tolist() == [e[0] for e in edges]
    assert net["target"].tolist() == [e[1] for e in edges]
    assert net["sign"].tolist() == [1 if e[2] == "+" else -1 for e in edges]
    assert set(net["source"]) | set(net["target"]) <= set(genes)


def test_beeline_truth_details(shared_data):
    ll = gcl.io.read(shared_data / "beeline" / "dyn-LL_2000_0")
    assert ll.n_vars == 18
    assert len(ll.uns[Key.uns.reference_network]) == 19
    mcad = gcl.io.read(shared_data / "beeline" / "mCAD_2000_0")
    net = mcad.uns[Key.uns.reference_network]
    assert sorted(mcad.var_names) == ["Coup", "Emx2", "Fgf8", "Pax6", "Sp8"]
    assert (net["sign"] == 1).sum() == 3
    assert (net["sign"] == -1).sum() == 11
    assert ((net["source"] == "Sp8") & (net["target"] == "Fgf8") & (net["sign"] == 1)).any()
    # the 50% dropout version has many more zeros than the original
    dropout = gcl.io.read(shared_data / "beeline" / "mCAD_2000_0_50")
    assert (mcad.X == 0).mean() < 0.05
    assert (dropout.X == 0).mean() > 0.2


@pytest.mark.parametrize(
    ("name", "shape", "raw"),
    [
        ("pancreas_50obs.h5ad", (50, 27998), True),
        ("dentategyrus_100obs.h5ad", (100, 13913), True),
        ("pancreas_100obs_preprocessed.h5ad", (100, 200), False),
        ("dentategyrus_100obs_preprocessed.h5ad", (100, 200), False),
    ],
)
def test_scvelo_subsets(shared_data, name, shape, raw):
    adata = gcl.io.read(shared_data / "scvelo" / name)
    assert adata.shape == shape
    for layer in (Key.layers.spliced, Key.layers.unspliced):
        assert adata.layers[layer].shape == shape
        assert _dense(adata.layers[layer]).min() >= 0
    spliced = _dense(adata.layers[Key.layers.spliced])
    unspliced = _dense(adata.layers[Key.layers.unspliced])
    assert spliced.sum() > unspliced.sum() > 0  # most reads are spliced
    if raw:
        # raw subsets: .X holds the spliced counts, kept as the counts layer
        np.testing.assert_array_equal(_dense(adata.X), spliced)
        np.testing.assert_array_equal(_dense(adata.layers[Key.layers.counts]), spliced)
        assert np.all(unspliced == np.round(unspliced))
    else:
        assert {"Ms", "Mu"} <= set(adata.layers)
        assert adata.layers["Ms"].shape == shape
        assert Key.layers.counts not in adata.layers  # log-normalised .X is not counts
