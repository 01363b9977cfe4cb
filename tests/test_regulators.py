"""gcl.pp.annotate_regulators: the shipped TF lists, symbol matching, and the scanpy conventions."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import gclandscape as gcl
from gclandscape._errors import GclError
from gclandscape._keys import Key
from gclandscape.pp._regulators import regulator_list

HUMAN = ["STAT1", "IRF1", "SPI1", "GATA1", "CEBPA", "GAPDH", "ACTB", "MKI67"]
HUMAN_TF = [True, True, True, True, True, False, False, False]
MOUSE = ["Gata1", "Spi1", "Klf1", "Irf8", "Cebpa", "Actb", "Gapdh", "Hbb-bs"]
MOUSE_TF = [True, True, True, True, True, False, False, False]


def _adata(genes, var=None):
    a = ad.AnnData(np.arange(3 * len(genes), dtype=np.float32).reshape(3, len(genes)))
    a.var_names = genes
    if var is not None:
        for k, v in var.items():
            a.var[k] = v
    return a


def test_shipped_lists_flag_known_tfs_not_housekeeping_genes():
    human, mouse = set(regulator_list("human")), set(regulator_list("mouse"))
    assert {"STAT1", "IRF1", "SPI1"} <= human
    assert {"Gata1", "Spi1", "Klf1", "Irf8"} <= mouse
    assert not {"GAPDH", "ACTB"} & human
    assert not {"Gapdh", "Actb"} & mouse
    # a TF census, not a handful of genes, and each list in its organism's case convention
    assert len(human) > 1000
    assert len(mouse) > 1000
    assert all(s == s.upper() or "orf" in s for s in human)
    assert all(s[1:] == s[1:].lower() for s in mouse if not s.endswith("Rik"))


@pytest.mark.parametrize(
    ("organism", "genes", "expected"), [("human", HUMAN, HUMAN_TF), ("mouse", MOUSE, MOUSE_TF)]
)
def test_annotate_flags_tfs(organism, genes, expected):
    adata = _adata(genes)
    assert gcl.pp.annotate_regulators(adata, organism=organism) is None
    assert adata.var[Key.var.regulator].dtype == bool
    assert adata.var[Key.var.regulator].tolist() == expected
    rec = adata.uns[Key.uns.regulator]
    assert rec["params"]["organism"] == organism
    assert rec["n_regulators"] == sum(expected)
    assert rec["n_case_insensitive"] == 0
    assert "gimmemotifs" in rec["source"]


def test_gene_symbols_column():
    ids = [f"ENSG{i:011d}" for i in range(len(HUMAN))]
    adata = _adata(ids, var={"symbol": HUMAN})
    gcl.pp.annotate_regulators(adata, organism="human", gene_symbols="symbol")
    assert adata.var[Key.var.regulator].tolist() == HUMAN_TF
    assert list(adata.var_names) == ids
    with pytest.raises(GclError, match="gene_symbols"):
        gcl.pp.annotate_regulators(adata, organism="human", gene_symbols="gene_name")


def test_ensembl_ids_warn_with_the_fix():
    adata = _adata([f"ENSG{i:011d}" for i in range(len(HUMAN))])
    with pytest.warns(UserWarning, match="gene_symbols="):
        gcl.pp.annotate_regulators(adata, organism="human")
    assert not adata.var[Key.var.regulator].any()


def test_case_insensitive_only_when_unambiguous():
    # mouse-case symbols with organism="human": matched up to case, with a warning
    adata = _adata(MOUSE)
    with pytest.warns(UserWarning, match="another organism"):
        gcl.pp.annotate_regulators(adata, organism="human")
    assert adata.var[Key.var.regulator].tolist() == MOUSE_TF
    assert adata.uns[Key.uns.regulator]["n_case_insensitive"] == 5
    # a mixed object with both spellings: only the organism's own spelling is flagged
    mixed = _adata([*HUMAN, "Gata1", "Spi1"])
    gcl.pp.annotate_regulators(mixed, organism="human")
    flags = mixed.var[Key.var.regulator]
    assert bool(flags["GATA1"])
    assert bool(flags["SPI1"])
    assert not flags["Gata1"]
    assert not flags["Spi1"]
    assert mixed.uns[Key.uns.regulator]["n_case_insensitive"] == 0


def test_unknown_organism_and_bad_lists():
    adata = _adata(HUMAN)
    with pytest.raises(GclError, match="organism='zebrafish'"):
        gcl.pp.annotate_regulators(adata, organism="zebrafish")
    with pytest.raises(GclError, match="empty"):
        gcl.pp.annotate_regulators(adata, regulators=[])
    with pytest.raises(GclError, match="single string"):
        gcl.pp.annotate_regulators(adata, regulators="SPI1")
    assert Key.var.regulator not in adata.var


def test_user_list():
    adata = _adata(HUMAN)
    gcl.pp.annotate_regulators(adata, regulators=["GAPDH", "ACTB", "MKI67", "STAT1", "IRF1"])
    assert adata.var[Key.var.regulator].tolist() == [
        True, True, False, False, False, True, True, True
    ]  # fmt: skip
    assert adata.uns[Key.uns.regulator]["params"]["regulators"] == "user"


def test_input_untouched_except_written_slots_and_copy():
    adata = _adata(HUMAN, var={"other": np.arange(len(HUMAN))})
    adata.uns["keep"] = {"a": 1}
    x = adata.X.copy()
    out = gcl.pp.annotate_regulators(adata, organism="human", copy=True)
    assert out is not adata
    assert Key.var.regulator not in adata.var
    assert Key.uns.regulator not in adata.uns
    assert out.var[Key.var.regulator].tolist() == HUMAN_TF
    gcl.pp.annotate_regulators(adata, organism="human", key_added="tf")
    assert list(adata.var.columns) == ["other", "tf"]
    assert set(adata.uns) == {"keep", "tf"}
    np.testing.assert_array_equal(adata.X, x)
    pd.testing.assert_index_equal(adata.var_names, pd.Index(HUMAN))
    assert adata.var["tf"].tolist() == HUMAN_TF
