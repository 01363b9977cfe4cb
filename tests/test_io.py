"""Unit tests of ``gcl.io.read`` / ``gcl.io.write``: formats, layout variants and every error."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import gclandscape as gcl
from gclandscape._errors import GclError, GclFileNotFoundError, GclFormatError
from gclandscape._keys import Key

BARCODES = ["AAACCTGAGAAGGCCT-1", "AAACCTGAGACAGACC-1", "AAACCTGAGATCCGAG-1"]


def _write_mtx(folder: Path, X, *, barcodes=None, features=None, gz=False, prefix="", legacy=False):
    """A Matrix Market folder written by hand, ``X`` given as genes × cells (Cell Ranger)."""
    folder.mkdir(parents=True, exist_ok=True)
    X = np.asarray(X)
    rows, cols = np.nonzero(X)
    lines = [
        "%%MatrixMarket matrix coordinate integer general",
        f"{X.shape[0]} {X.shape[1]} {len(rows)}",
        *(f"{r + 1} {c + 1} {int(X[r, c])}" for r, c in zip(rows, cols)),
    ]
    barcodes = BARCODES[: X.shape[1]] if barcodes is None else barcodes
    if features is None:
        features = [f"ENSMUSG{i:011d}\tGene{i}\tGene Expression" for i in range(X.shape[0])]
    files = {
        "matrix.mtx": "\n".join(lines) + "\n",
        "barcodes.tsv": "".join(f"{b}\n" for b in barcodes),
        ("genes.tsv" if legacy else "features.tsv"): "".join(f"{f}\n" for f in features),
    }
    for name, text in files.items():
        target = folder / f"{prefix}{name}{'.gz' if gz else ''}"
        target.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return folder


def _read_quiet(path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        return gcl.io.read(path, **kwargs)


# ------------------------------------------------------------------------------ formats


def test_csv_genes_as_rows_detected_from_barcodes(tmp_path):
    path = tmp_path / "counts.csv"
    path.write_text(f"gene,{','.join(BARCODES)}\nGata1,3,0,1\nKlf1,0,2,5\n")
    adata = _read_quiet(path)
    assert adata.shape == (3, 2)
    assert list(adata.obs_names) == BARCODES
    assert list(adata.var_names) == ["Gata1", "Klf1"]
    np.testing.assert_array_equal(adata.X, [[3, 0], [0, 2], [1, 5]])
    assert adata.X.dtype == np.float32  # integer counts from text, as scanpy stores them
    np.testing.assert_array_equal(adata.layers[Key.layers.counts], adata.X)


def test_csv_cells_as_rows_detected_from_ensembl_ids(tmp_path):
    path = tmp_path / "counts.tsv.gz"
    text = "\tENSMUSG00000031162\tENSMUSG00000054191\ncell_1\t1\t2\ncell_2\t0\t4\n"
    path.write_bytes(gzip.compress(text.encode()))
    adata = _read_quiet(path)
    assert list(adata.obs_names) == ["cell_1", "cell_2"]
    assert list(adata.var_names) == ["ENSMUSG00000031162", "ENSMUSG00000054191"]
    np.testing.assert_array_equal(adata.X, [[1, 2], [0, 4]])


def test_txt_whitespace_and_r_style_header(tmp_path):
    # R's write.table: no name for the row-name column, whitespace separated
    path = tmp_path / "expr.txt"
    path.write_text("c1 c2 c3\nGata1 0.5 1 2\nSpi1 3 4.25 0\n")
    adata = _read_quiet(path, genes_as_rows=True)
    assert list(adata.obs_names) == ["c1", "c2", "c3"]
    assert list(adata.var_names) == ["Gata1", "Spi1"]
    np.testing.assert_array_equal(adata.X, [[0.5, 3], [1, 4.25], [2, 0]])
    assert adata.X.dtype == np.float64
    assert Key.layers.counts not in adata.layers  # 0.5 is not a count


def test_text_names_that_look_like_missing_values_are_kept(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("gene,c1,c2\nNA,1,2\nnan,3,4\n")
    adata = _read_quiet(path, genes_as_rows=True)
    assert list(adata.var_names) == ["NA", "nan"]


def test_integer_counts_above_float32_precision_stay_float64(tmp_path):
    path = tmp_path / "m.csv"
    big = 2**24 + 1
    path.write_text(f"gene,c1\nG1,{big}\n")
    adata = _read_quiet(path, genes_as_rows=True)
    assert adata.X.dtype == np.float64
    assert adata.X[0, 0] == big


@pytest.mark.parametrize("gz", [False, True])
def test_10x_mtx_folder(tmp_path, gz):
    X = np.array([[1, 0, 2], [0, 0, 3], [4, 5, 0], [0, 1, 0]])  # 4 genes × 3 cells
    folder = _write_mtx(tmp_path / "mtx", X, gz=gz)
    adata = _read_quiet(folder)
    assert adata.shape == (3, 4)
    assert sparse.issparse(adata.X)
    assert adata.X.format == "csr"
    np.testing.assert_array_equal(adata.X.toarray(), X.T)
    assert list(adata.obs_names) == BARCODES
    assert list(adata.var_names) == [f"Gene{i}" for i in range(4)]
    assert adata.var["gene_ids"].iloc[0] == "ENSMUSG00000000000"
    assert (adata.var["feature_types"] == "Gene Expression").all()
    np.testing.assert_array_equal(adata.layers[Key.layers.counts].toarray(), X.T)


def test_10x_mtx_variants_prefix_legacy_transposed_and_file_path(tmp_path):
    X = np.array([[1, 0, 2], [0, 7, 3]])  # 2 genes × 3 cells
    legacy = [f"ENSG{i}\tG{i}" for i in range(2)]
    folder = _write_mtx(tmp_path / "a", X, prefix="sampleA_", legacy=True, features=legacy)
    adata = _read_quiet(folder)
    np.testing.assert_array_equal(adata.X.toarray(), X.T)
    assert list(adata.var_names) == ["G0", "G1"]
    # the .mtx path itself reads its folder
    np.testing.assert_array_equal(_read_quiet(folder / "sampleA_matrix.mtx").X.toarray(), X.T)
    # a matrix stored cells × genes is recognised from the barcode and feature counts
    flipped = _write_mtx(tmp_path / "b", X.T, barcodes=BARCODES, features=legacy)
    adata = _read_quiet(flipped)
    np.testing.assert_array_equal(adata.X.toarray(), X.T)
    assert list(adata.obs_names) == BARCODES


def test_10x_mtx_keeps_gene_expression_features_only(tmp_path):
    X = np.array([[1, 0, 2], [0, 7, 3], [9, 9, 9]])
    features = [
        "E0\tCd3e\tGene Expression",
        "E1\tCd19\tGene Expression",
        "A\tCD3_TotalA\tAntibody Capture",
    ]
    adata = _read_quiet(_write_mtx(tmp_path / "f", X, features=features))
    assert list(adata.var_names) == ["Cd3e", "Cd19"]
    np.testing.assert_array_equal(adata.X.toarray(), X[:2].T)


def test_h5_file_holding_anndata_is_read_as_h5ad(tmp_path):
    adata0 = ad.AnnData(np.array([[1.5, 2.0]]), obs=pd.DataFrame(index=["c"]))
    adata0.write_h5ad(tmp_path / "x.h5")
    adata = _read_quiet(tmp_path / "x.h5")
    np.testing.assert_array_equal(adata.X, [[1.5, 2.0]])


def test_h5ad_keeps_dtype_and_existing_counts_layer(tmp_path):
    X = np.array([[1.0, 2.0], [3.0, 0.0]])
    counts = np.array([[10.0, 20.0], [30.0, 0.0]])
    ad.AnnData(X, layers={"counts": counts}).write_h5ad(tmp_path / "a.h5ad")
    adata = _read_quiet(tmp_path / "a.h5ad")
    assert adata.X.dtype == np.float64
    np.testing.assert_array_equal(adata.layers[Key.layers.counts], counts)  # not replaced by X


def test_counts_layer_is_a_copy(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(f"gene,{','.join(BARCODES)}\nGata1,3,0,1\nmt-Co1,0,2,5\n")
    adata = _read_quiet(path)
    adata.X[0, 0] = 100
    assert adata.layers[Key.layers.counts][0, 0] == 3


def test_h5ad_scaled_values_may_be_negative(tmp_path):
    X = np.array([[-0.5, 1.25], [0.5, -1.25]])
    ad.AnnData(X).write_h5ad(tmp_path / "scaled.h5ad")
    adata = _read_quiet(tmp_path / "scaled.h5ad")
    np.testing.assert_array_equal(adata.X, X)
    assert Key.layers.counts not in adata.layers


def test_beeline_folder(tmp_path):
    folder = tmp_path / "net"
    folder.mkdir()
    (folder / "ExpressionData.csv").write_text(",E1_0,E2_1,E3_2\ng1,0.1,0.2,0.3\ng2,1,0,2.5\n")
    (folder / "PseudoTime.csv").write_text(
        ",PseudoTime0,PseudoTime1\nE3_2,,3\nE1_0,0.5,\nE2_1,1.5,1\n"
    )
    (folder / "refNetwork.csv").write_text("Gene1,Gene2,Type\ng1,g2,+\ng2,g1,-\ng2,g2,+\n")
    adata = _read_quiet(folder)
    assert adata.shape == (3, 2)
    assert list(adata.obs_names) == ["E1_0", "E2_1", "E3_2"]
    np.testing.assert_array_equal(adata.X, [[0.1, 1], [0.2, 0], [0.3, 2.5]])
    # PseudoTime rows are aligned to the expression cells, NaN kept
    np.testing.assert_array_equal(adata.obs["PseudoTime0"], [0.5, 1.5, np.nan])
    np.testing.assert_array_equal(adata.obs["PseudoTime1"], [np.nan, 1.0, 3.0])
    net = adata.uns[Key.uns.reference_network]
    assert list(net.columns) == ["source", "target", "sign"]
    assert net.values.tolist() == [["g1", "g2", 1], ["g2", "g1", -1], ["g2", "g2", 1]]
    # the network round-trips through h5ad
    gcl.io.write(adata, tmp_path / "out" / "net.h5ad")
    back = gcl.io.read(tmp_path / "out" / "net.h5ad")
    pd.testing.assert_frame_equal(back.uns[Key.uns.reference_network], net)
    pd.testing.assert_frame_equal(back.obs, adata.obs)
    # the expression file alone follows BEELINE's genes × cells convention
    alone = _read_quiet(folder / "ExpressionData.csv")
    np.testing.assert_array_equal(alone.X, adata.X)


def test_beeline_errors(tmp_path):
    folder = tmp_path / "net"
    folder.mkdir()
    (folder / "ExpressionData.csv").write_text(",E1,E2\ng1,0.1,0.2\ng2,1,0\n")
    (folder / "PseudoTime.csv").write_text(",PseudoTime\nE1,0.5\nE9,1\n")
    with pytest.raises(GclFormatError, match=r"1 expression cells have no pseudotime.*'E2'"):
        gcl.io.read(folder)
    (folder / "PseudoTime.csv").unlink()
    (folder / "refNetwork.csv").write_text("Gene1,Gene2,Type\ng1,g2,+\ng2,g1,maybe\n")
    with pytest.raises(GclFormatError, match=r"edge 2 \(g2 -> g1\) has Type 'maybe'.*'\+'"):
        gcl.io.read(folder)


def test_write_round_trips_gclandscape_results_without_mutating(tmp_path):
    adata = ad.AnnData(
        np.arange(6, dtype=np.float32).reshape(3, 2),
        obs=pd.DataFrame({"celltype": ["Ery", "Mk", "Ery"]}, index=["a", "b", "c"]),
    )
    adata.uns[Key.uns.genome] = {
        "W": np.array([[0.0, -1.5], [2.0, 0.0]]),
        "genes": np.array(["Gata1", "Spi1"], dtype=object),
        "params": {"seed": 0, "prior": "none", "l1": 0.01},
        "edges": pd.DataFrame({"source": ["Gata1"], "target": ["Spi1"], "weight": [-1.5]}),
    }
    path = tmp_path / "deep" / "er" / "res.h5ad"
    gcl.io.write(adata, path)
    assert adata.obs["celltype"].dtype == object  # the caller's object is untouched
    back = gcl.io.read(path)
    g = back.uns[Key.uns.genome]
    np.testing.assert_array_equal(g["W"], adata.uns[Key.uns.genome]["W"])
    assert list(g["genes"]) == ["Gata1", "Spi1"]
    assert g["params"] == {"seed": 0, "prior": "none", "l1": 0.01}
    pd.testing.assert_frame_equal(g["edges"], adata.uns[Key.uns.genome]["edges"])
    assert list(back.obs["celltype"]) == ["Ery", "Mk", "Ery"]
    with h5py.File(path) as f:  # stored as plain HDF5 datasets, no pickled blobs
        assert f["uns/gcl_genome/W"].dtype == np.float64


# ------------------------------------------------------------------------------ errors


def test_missing_file(tmp_path):
    with pytest.raises(GclFileNotFoundError) as err:
        gcl.io.read(tmp_path / "nope.h5ad")
    assert isinstance(err.value, FileNotFoundError)
    assert isinstance(err.value, ValueError)
    assert "nope.h5ad" in str(err.value)
    assert "no such file" in str(err.value)
    assert "Fix" in str(err.value)


def test_unknown_format_lists_supported_and_format_argument(tmp_path):
    path = tmp_path / "counts.xlsx"
    path.write_text("x")
    with pytest.raises(GclFormatError) as err:
        gcl.io.read(path)
    msg = str(err.value)
    assert "counts.xlsx" in msg
    assert "format=" in msg
    for name in ("h5ad", "10x_mtx", "loom", "zarr", "beeline", "csv"):
        assert repr(name) in msg
    with pytest.raises(GclError, match=r"format='excel'.*'h5ad'"):
        gcl.io.read(path, format="excel")
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "notes.md").write_text("x")
    with pytest.raises(GclFormatError, match=r"not a format.*notes\.md.*format="):
        gcl.io.read(folder)


def test_format_argument_overrides_suffix(tmp_path):
    path = tmp_path / "counts.data"
    path.write_text(f"gene,{BARCODES[0]}\nGata1,3\n")
    assert gcl.io.read(path, format="csv", genes_as_rows=True).shape == (1, 1)


def test_genes_as_rows_is_validated(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("gene,c1\nG1,1\n")
    with pytest.raises(GclError, match="must be True"):
        gcl.io.read(path, genes_as_rows="yes")
    ad.AnnData(np.ones((1, 1))).write_h5ad(tmp_path / "a.h5ad")
    with pytest.raises(GclError, match=r"only applies to text matrices.*a\.h5ad"):
        gcl.io.read(tmp_path / "a.h5ad", genes_as_rows=True)


def test_ambiguous_orientation_asks_for_genes_as_rows(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("name,Sample1,Sample2\nGata1,1,2\nSpi1,3,4\n")
    with pytest.raises(GclFormatError) as err:
        gcl.io.read(path)
    msg = str(err.value)
    assert "m.csv" in msg
    assert "genes_as_rows=True" in msg
    assert "genes_as_rows=False" in msg
    assert "'Gata1'" in msg
    assert "'Sample1'" in msg


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("", r"empty \(the file has no header line\)"),
        ("gene,c1,c2\n", r"empty \(2 cells × 0 genes\)"),
        ("gene\nG1\nG2\n", r"empty \(0 cells × 2 genes\)"),
    ],
)
def test_empty_text_matrix(tmp_path, text, pattern):
    path = tmp_path / "e.csv"
    path.write_text(text)
    with pytest.raises(GclFormatError, match=pattern) as err:
        gcl.io.read(path, genes_as_rows=True)
    assert "e.csv" in str(err.value)
    assert "Fix" in str(err.value)


def test_empty_mtx_and_h5ad(tmp_path):
    folder = _write_mtx(tmp_path / "m", np.zeros((3, 0), dtype=int), barcodes=[])
    with pytest.raises(GclFormatError, match=r"empty \(0 cells × 3 genes\)"):
        gcl.io.read(folder)
    ad.AnnData(np.zeros((0, 4))).write_h5ad(tmp_path / "e.h5ad")
    with pytest.raises(GclFormatError, match=r"e\.h5ad: the matrix is empty \(0 cells × 4 genes\)"):
        gcl.io.read(tmp_path / "e.h5ad")


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["1", "-2", "-3"], r"2 negative values \(first at cell 'c2', gene 'Gata1': -2\.0\)"),
        (["1", "NA", "4"], r"1 NaN \(missing\) value \(first at cell 'c2', gene 'Gata1': nan\)"),
        (["inf", "1", "-inf"], r"2 infinite values \(first at cell 'c1', gene 'Gata1': inf\)"),
    ],
)
def test_bad_values_in_text(tmp_path, cells, expected):
    path = tmp_path / "bad.csv"
    path.write_text(f"gene,c1,c2,c3\nGata1,{','.join(cells)}\nSpi1,1,2,3\n")
    with pytest.raises(GclFormatError, match=expected) as err:
        gcl.io.read(path, genes_as_rows=True)
    assert "bad.csv" in str(err.value)
    assert "Fix" in str(err.value)


def test_bad_values_in_mtx_and_h5ad(tmp_path):
    folder = _write_mtx(tmp_path / "m", np.array([[1, 0, -4], [0, 2, 0]]))
    with pytest.raises(
        GclFormatError,
        match=rf"1 negative value \(first at cell '{BARCODES[2]}', gene 'Gene0': -4\.0\)",
    ):
        gcl.io.read(folder)
    X = sparse.csr_matrix(np.array([[1.0, 0.0], [0.0, np.nan]]))
    ad.AnnData(
        X, obs=pd.DataFrame(index=["a", "b"]), var=pd.DataFrame(index=["G1", "G2"])
    ).write_h5ad(tmp_path / "n.h5ad")
    with pytest.raises(
        GclFormatError, match=r"n\.h5ad: .*1 NaN \(missing\) value \(first at cell 'b', gene 'G2'"
    ):
        gcl.io.read(tmp_path / "n.h5ad")
    # whole numbers in .X are counts: negative ones are an error even in .h5ad
    ad.AnnData(np.array([[1.0, -2.0]])).write_h5ad(tmp_path / "c.h5ad")
    with pytest.raises(GclFormatError, match=r"1 negative value"):
        gcl.io.read(tmp_path / "c.h5ad")


def test_non_numeric_text_cell(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("gene,c1,c2,c3\nGata1,1,2,3\nSpi1,4,five,6\ncelltype,Ery,Mk,Ery\n")
    with pytest.raises(GclFormatError) as err:
        gcl.io.read(path, genes_as_rows=True)
    msg = str(err.value)
    assert "m.csv" in msg
    assert "4 entries of the matrix are not a number" in msg
    assert "row 'Spi1', column 'c2': 'five'" in msg


def test_header_and_rows_disagree(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("gene,c1,c2,c3,c4,c5\nGata1,1,2\nSpi1,4,5\n")
    with pytest.raises(
        GclFormatError, match=r"m\.csv: the header has 6 names but the rows have 3 fields"
    ):
        gcl.io.read(path, genes_as_rows=True)


@pytest.mark.parametrize("which", ["barcodes", "features"])
def test_10x_mtx_count_mismatch(tmp_path, which):
    X = np.array([[1, 0, 2], [0, 0, 3]])
    kwargs = (
        {"barcodes": BARCODES[:2]}
        if which == "barcodes"
        else {"features": ["E\tA\tGene Expression"] * 3}
    )
    folder = _write_mtx(tmp_path / "m", X, **kwargs)
    with pytest.raises(GclFormatError) as err:
        gcl.io.read(folder)
    msg = str(err.value)
    n = 2 if which == "barcodes" else 3
    assert f"{which}.tsv lists {n} {which} for its" in msg
    assert "matrix.mtx is 2 × 3 (genes × cells" in msg
    assert str(folder) in msg
    assert "Fix" in msg


def test_10x_mtx_missing_companion_file(tmp_path):
    folder = _write_mtx(tmp_path / "m", np.array([[1, 2]]))
    (folder / "barcodes.tsv").unlink()
    with pytest.raises(GclFileNotFoundError, match=r"has matrix\.mtx but no barcodes\.tsv\[\.gz\]"):
        gcl.io.read(folder)


def test_10x_h5_count_mismatch(tmp_path):
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["barcodes"] = np.array([b"A-1", b"C-1"])  # 2 barcodes for 3 cells
        g["data"] = np.array([1, 2, 3], dtype=np.int32)
        g["indices"] = np.array([0, 1, 0])
        g["indptr"] = np.array([0, 1, 2, 3])
        g["shape"] = np.array([2, 3], dtype=np.int32)
        g["features/id"] = np.array([b"E0", b"E1"])
        g["features/name"] = np.array([b"G0", b"G1"])
        g["features/feature_type"] = np.array([b"Gene Expression"] * 2)
    with pytest.raises(
        GclFormatError,
        match=r"f\.h5: the matrix is 2 genes × 3 cells but the file has 2 barcodes for 3 cells",
    ):
        gcl.io.read(path)


@pytest.mark.parametrize("target", ["counts.csv.gz", "matrix.mtx.gz", "barcodes.tsv.gz"])
def test_truncated_gzip(tmp_path, target):
    if target == "counts.csv.gz":
        path = tmp_path / target
        rows = "".join(f"G{i},{i},{i + 1},{i + 2}\n" for i in range(2000))
        path.write_bytes(gzip.compress(f"gene,{','.join(BARCODES)}\n{rows}".encode()))
        read_path = path
    else:
        rng = np.random.default_rng(0)
        X = rng.poisson(2, size=(300, 3))
        read_path = _write_mtx(tmp_path / "m", X, barcodes=BARCODES, gz=True)
        path = read_path / target
    data = path.read_bytes()
    path.write_bytes(data[: max(20, len(data) // 2)])
    with pytest.raises(GclFormatError) as err:
        gcl.io.read(read_path, genes_as_rows=True) if target.endswith("csv.gz") else gcl.io.read(
            read_path
        )
    msg = str(err.value)
    assert target in msg
    assert "truncated or corrupt" in msg
    assert "gzip -t" in msg
    assert err.value.__cause__ is None  # no dependency traceback attached


def test_truncated_or_corrupt_hdf5(tmp_path):
    ad.AnnData(np.ones((50, 40))).write_h5ad(tmp_path / "a.h5ad")
    data = (tmp_path / "a.h5ad").read_bytes()
    (tmp_path / "a.h5ad").write_bytes(data[: len(data) // 3])
    with pytest.raises(GclFormatError, match=r"a\.h5ad: .*(truncated|could not)"):
        gcl.io.read(tmp_path / "a.h5ad")
    (tmp_path / "b.loom").write_bytes(b"definitely not hdf5")
    with pytest.raises(GclFormatError, match=r"b\.loom: could not be opened as a \.loom file"):
        gcl.io.read(tmp_path / "b.loom")


def test_duplicate_gene_names_made_unique_with_warning(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(
        f"gene,{','.join(BARCODES)}\nGata1,1,2,3\nKlf1,0,0,1\nGata1,4,5,6\nmt-Co1,1,1,1\nKlf1,9,9,9\n"
    )
    with pytest.warns(UserWarning, match=r"2 duplicated gene names \('Gata1', 'Klf1'\)") as rec:
        adata = gcl.io.read(path)
    assert rec[0].filename == __file__  # the warning points at the caller's line
    assert adata.var_names.is_unique
    assert list(adata.var_names) == ["Gata1", "Klf1", "Gata1-1", "mt-Co1", "Klf1-1"]
    np.testing.assert_array_equal(adata[:, "Gata1-1"].X.ravel(), [4, 5, 6])


def test_write_refuses_other_suffixes_and_non_anndata(tmp_path):
    adata = ad.AnnData(np.ones((2, 2)))
    for name in ("out.csv", "out.zarr", "out"):
        with pytest.raises(
            GclFormatError, match=r"writes \.h5ad files only.*Fix: use a path ending in \.h5ad"
        ):
            gcl.io.write(adata, tmp_path / name)
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(GclError, match="expects an AnnData"):
        gcl.io.write(np.ones(2), tmp_path / "x.h5ad")


def test_write_reports_unstorable_objects(tmp_path):
    adata = ad.AnnData(np.ones((2, 2)))
    adata.uns["model"] = object()
    with pytest.raises(GclFormatError, match=r"bad\.h5ad: could not be written as \.h5ad.*model"):
        gcl.io.write(adata, tmp_path / "bad.h5ad")


def test_zarr_v3_store_detected_without_suffix(tmp_path):
    adata0 = ad.AnnData(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32))
    with ad.settings.override(zarr_write_format=3), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata0.write_zarr(tmp_path / "store")
    assert (tmp_path / "store" / "zarr.json").exists()
    adata = gcl.io.read(tmp_path / "store")
    np.testing.assert_array_equal(adata.X, adata0.X)
    np.testing.assert_array_equal(adata.layers[Key.layers.counts], adata0.X)


def test_excel_style_csv_with_byte_order_mark_and_crlf(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffc1,c2\r\nGata1,1,2\r\nSpi1,3,4\r\n".encode())
    adata = _read_quiet(path, genes_as_rows=True)
    assert list(adata.obs_names) == ["c1", "c2"]
    np.testing.assert_array_equal(adata.X, [[1, 3], [2, 4]])


@pytest.mark.parametrize("genes_as_rows", [True, False])
def test_r_write_table_quoted_names_are_clean(tmp_path, genes_as_rows):
    """R's write.table default: space-separated, every name quoted, the header one field short
    (no name for the row names)."""
    genes, cells = ["Gata1", "Spi1", "mt-Co1"], ["AAACCTGAGAAGGCCT-1", "AAACCTGAGACAGACC-1"]
    values = np.array([[1, 0], [2, 5], [0, 3]])  # genes x cells
    cols, rows, body = (cells, genes, values) if genes_as_rows else (genes, cells, values.T)
    lines = [" ".join(f'"{c}"' for c in cols)]
    lines += [f'"{r}" ' + " ".join(map(str, v)) for r, v in zip(rows, body)]
    path = tmp_path / "expr.txt"
    path.write_text("\n".join(lines) + "\n")
    adata = _read_quiet(path)
    assert list(adata.var_names) == genes
    assert list(adata.obs_names) == cells
    np.testing.assert_array_equal(adata.X, values.T)


def _chunked_store(path: Path, X, zarr_format: int = 2) -> None:
    """An AnnData zarr store whose X arrays are cut into several chunks."""
    import zarr

    adata = ad.AnnData(X)
    adata.obs_names = [f"c{i}" for i in range(X.shape[0])]
    with ad.settings.override(zarr_write_format=zarr_format), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_zarr(path)
        group = zarr.open_group(path, mode="a", use_consolidated=False)
        kwargs = {"chunks": (10, X.shape[1])} if not sparse.issparse(X) else {"chunks": (16,)}
        ad.io.write_elem(group, "X", X, dataset_kwargs=kwargs)
        zarr.consolidate_metadata(path)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("kind", ["dense", "csr_data", "csr_indices", "csr_indptr"])
def test_zarr_store_with_a_missing_chunk_is_an_error(tmp_path, kind, zarr_format):
    counts = np.random.default_rng(0).poisson(3.0, size=(60, 5)).astype(np.float32) + 1
    X = counts if kind == "dense" else sparse.csr_matrix(counts)
    store = tmp_path / "cells.zarr"
    _chunked_store(store, X, zarr_format)
    assert gcl.io.read(store).X.sum() == pytest.approx(counts.sum())  # intact: reads whole
    part = "X" if kind == "dense" else f"X/{kind.removeprefix('csr_')}"
    meta = {".zarray", ".zattrs", ".zgroup", "zarr.json"}
    chunks = sorted(p for p in (store / part).rglob("*") if p.is_file() and p.name not in meta)
    assert len(chunks) > 2
    chunks[1].unlink()  # a lost chunk in the middle: zarr would fill it with zeros
    with pytest.raises(GclFormatError, match=rf"cells\.zarr: the zarr store lacks 1 of .*'{part}'"):
        gcl.io.read(store)


def test_zarr_store_with_all_zero_chunks_reads(tmp_path):
    """zarr omits chunks of fill values by design: an all-zero matrix and leading empty rows
    of a sparse one are not losses."""
    counts = np.random.default_rng(1).poisson(3.0, size=(60, 5)).astype(np.float32)
    counts[:40] = 0  # the first chunks of indptr hold only zeros
    store = tmp_path / "sparse.zarr"
    _chunked_store(store, sparse.csr_matrix(counts))
    np.testing.assert_array_equal(gcl.io.read(store).X.toarray(), counts)
    zeros = tmp_path / "zeros.zarr"
    _chunked_store(zeros, np.zeros((30, 4), dtype=np.float32))
    assert gcl.io.read(zeros).X.sum() == 0
