"""Property-based round trips for ``gcl.io.read``: write random small matrices in every format
and orientation with the formats' own writers, read them back, compare with the original."""

from __future__ import annotations

import gzip
import re
import string
import tempfile
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

import gclandscape as gcl
from gclandscape._errors import GclFormatError
from gclandscape._keys import Key
from gclandscape.io._checks import check_values

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_ALPHABET = string.ascii_letters + string.digits + "_.-"
_name = st.text(alphabet=_ALPHABET, min_size=1, max_size=8)


def _names(n: int):
    return st.lists(_name, min_size=n, max_size=n, unique=True)


@st.composite
def datasets(draw, *, allow_float: bool = True):
    """A small matrix (cells × genes), its names and an integer/float flag."""
    n_obs = draw(st.integers(1, 7))
    n_vars = draw(st.integers(1, 6))
    integer = draw(st.booleans()) if allow_float else True
    shape = (n_obs, n_vars)
    if integer:
        values = st.integers(0, 10**6)
    else:
        values = st.floats(0, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    flat = draw(st.lists(values, min_size=n_obs * n_vars, max_size=n_obs * n_vars))
    # sprinkle zeros so that sparse writers have something to skip
    X = np.array(flat, dtype=np.int64 if integer else np.float64).reshape(shape)
    zero = np.array(draw(st.lists(st.booleans(), min_size=X.size, max_size=X.size)))
    X[zero.reshape(shape)] = 0
    return {
        "X": X,
        "integer": integer,
        "obs_names": draw(_names(n_obs)),
        "var_names": draw(_names(n_vars)),
        "batch": draw(
            st.lists(st.sampled_from(["a", "b", "ctrl"]), min_size=n_obs, max_size=n_obs)
        ),
        "score": draw(
            st.lists(
                st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False),
                min_size=n_obs,
                max_size=n_obs,
            )
        ),
    }


def _dense(X) -> np.ndarray:
    return np.asarray(X.toarray() if sparse.issparse(X) else X, dtype=np.float64)


def _anndata(d, *, sparse_X: bool = False) -> ad.AnnData:
    X = d["X"] if d["integer"] else d["X"].astype(np.float64)
    adata = ad.AnnData(
        sparse.csr_matrix(X) if sparse_X else X,
        obs=pd.DataFrame(
            {"batch": pd.Categorical(d["batch"]), "score": np.array(d["score"])},
            index=d["obs_names"],
        ),
        var=pd.DataFrame(index=d["var_names"]),
    )
    return adata


# ---------------------------------------------------------------------------------- writers


def write_text(d, path: Path, *, sep: str, genes_as_rows: bool) -> None:
    df = pd.DataFrame(d["X"], index=d["obs_names"], columns=d["var_names"])
    if genes_as_rows:
        df = df.T
    df.index.name = "name"
    df.to_csv(path, sep=sep, float_format=None, compression="infer")


def write_10x_mtx(d, folder: Path, *, gz: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    M = sparse.coo_matrix(d["X"].T)  # genes × cells, as Cell Ranger writes it
    scipy.io.mmwrite(folder / "matrix.mtx", M, field="integer" if d["integer"] else "real")
    features = "".join(f"ID_{g}\t{g}\tGene Expression\n" for g in d["var_names"])
    barcodes = "".join(f"{b}\n" for b in d["obs_names"])
    files = {"features.tsv": features, "barcodes.tsv": barcodes}
    if gz:
        raw = (folder / "matrix.mtx").read_bytes()
        (folder / "matrix.mtx").unlink()
        (folder / "matrix.mtx.gz").write_bytes(gzip.compress(raw))
    for name, text in files.items():
        data = text.encode()
        (folder / f"{name}{suffix}").write_bytes(gzip.compress(data) if gz else data)


def write_10x_h5(d, path: Path) -> None:
    """A Cell Ranger v3 ``filtered_feature_bc_matrix.h5``: CSC genes × cells."""
    X = d["X"]
    csr = sparse.csr_matrix(X.astype(np.int32) if d["integer"] else X)  # == genes × cells CSC
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g.create_dataset("barcodes", data=np.array(d["obs_names"], dtype="S"))
        g.create_dataset("data", data=csr.data)
        g.create_dataset("indices", data=csr.indices.astype(np.int64))
        g.create_dataset("indptr", data=csr.indptr.astype(np.int64))
        g.create_dataset("shape", data=np.array([X.shape[1], X.shape[0]], dtype=np.int32))
        ft = g.create_group("features")
        ft.create_dataset("id", data=np.array([f"ID_{v}" for v in d["var_names"]], dtype="S"))
        ft.create_dataset("name", data=np.array(d["var_names"], dtype="S"))
        ft.create_dataset("feature_type", data=np.array([b"Gene Expression"] * X.shape[1]))
        ft.create_dataset("genome", data=np.array([b"mm10"] * X.shape[1]))
        ft.create_dataset("_all_tag_keys", data=np.array([b"genome"]))


# ---------------------------------------------------------------------------------- checks


def _assert_round_trip(adata: ad.AnnData, d, *, obs_columns: bool) -> None:
    assert adata.shape == d["X"].shape
    assert list(adata.obs_names) == d["obs_names"]
    assert list(adata.var_names) == d["var_names"]
    np.testing.assert_array_equal(_dense(adata.X), d["X"].astype(np.float64))
    integer = d["integer"] or bool(np.all(d["X"] == np.round(d["X"])))
    if integer:
        np.testing.assert_array_equal(_dense(adata.layers[Key.layers.counts]), d["X"])
    else:
        assert Key.layers.counts not in adata.layers
    if obs_columns:
        assert [str(v) for v in adata.obs["batch"]] == d["batch"]
        np.testing.assert_array_equal(adata.obs["score"].to_numpy(dtype=float), d["score"])


def _read(path, **kwargs) -> ad.AnnData:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # unique names: no warning may be raised
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        return gcl.io.read(path, **kwargs)


@pytest.mark.parametrize(
    ("suffix", "sep"),
    [(".csv", ","), (".tsv", "\t"), (".csv.gz", ","), (".txt", "\t"), (".txt", " ")],
)
@SETTINGS
@given(d=datasets(), genes_as_rows=st.booleans())
def test_text_round_trip(suffix, sep, d, genes_as_rows):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"m{suffix}"
        write_text(d, path, sep=sep, genes_as_rows=genes_as_rows)
        adata = _read(path, genes_as_rows=genes_as_rows)
    _assert_round_trip(adata, d, obs_columns=False)


@pytest.mark.parametrize("gz", [False, True])
@SETTINGS
@given(d=datasets())
def test_10x_mtx_round_trip(gz, d):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "filtered_feature_bc_matrix"
        write_10x_mtx(d, folder, gz=gz)
        adata = _read(folder)
    _assert_round_trip(adata, d, obs_columns=False)
    assert list(adata.var["gene_ids"]) == [f"ID_{v}" for v in d["var_names"]]
    assert sparse.issparse(adata.X)
    assert adata.X.dtype == np.float32 or not d["integer"]


@SETTINGS
@given(d=datasets())
def test_10x_h5_round_trip(d):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "filtered_feature_bc_matrix.h5"
        write_10x_h5(d, path)
        adata = _read(path)
    _assert_round_trip(adata, d, obs_columns=False)
    assert list(adata.var["gene_ids"]) == [f"ID_{v}" for v in d["var_names"]]


@pytest.mark.parametrize("fmt", ["h5ad", "zarr", "loom"])
@settings(SETTINGS, max_examples=8)
@given(d=datasets(), sparse_X=st.booleans())
def test_anndata_stores_round_trip(fmt, d, sparse_X):
    adata0 = _anndata(d, sparse_X=sparse_X)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"cells.{fmt}"
        if fmt == "h5ad":
            gcl.io.write(adata0, path)
        elif fmt == "zarr":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Writing zarr v2 data", UserWarning)
                adata0.write_zarr(path)
        else:
            adata0.write_loom(path)
        adata = _read(path)
    _assert_round_trip(adata, d, obs_columns=True)
    if fmt != "loom":  # AnnData stores keep the dtype they were written with
        assert adata.X.dtype == adata0.X.dtype


@SETTINGS
@given(d=datasets(allow_float=False), genes_as_rows=st.booleans(), data=st.data())
def test_orientation_detected_from_barcodes_and_gene_ids(d, genes_as_rows, data):
    """With 10x barcodes on one axis and Ensembl IDs or gene symbols on the other, the
    orientation is found without ``genes_as_rows``."""
    n_obs, n_vars = d["X"].shape
    barcode = st.text(alphabet="ACGT", min_size=16, max_size=16).map(lambda s: s + "-1")
    d["obs_names"] = data.draw(st.lists(barcode, min_size=n_obs, max_size=n_obs, unique=True))
    ensembl = st.integers(0, 10**11 - 1).map(lambda i: f"ENSMUSG{i:011d}")
    symbol = _name.filter(
        lambda s: (
            not re.match(r"(?i)(mt-|rp[ls]\d|cells?[ _.-]?\d|barcode|bc[ _.-]?\d)", s)
            and not re.search("[ACGTN]{8}", s)
        )
    )
    use_ids = data.draw(st.booleans())
    if use_ids:
        genes = data.draw(st.lists(ensembl, min_size=n_vars, max_size=n_vars, unique=True))
    else:  # arbitrary symbols plus one mitochondrial gene
        others = data.draw(
            st.lists(symbol, min_size=n_vars - 1, max_size=n_vars - 1, unique=True).filter(
                lambda x: "mt-Co1" not in x
            )
        )
        genes = [*others, "mt-Co1"]
    d["var_names"] = genes
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.csv"
        write_text(d, path, sep=",", genes_as_rows=genes_as_rows)
        adata = _read(path)
    _assert_round_trip(adata, d, obs_columns=False)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    fmt=st.sampled_from(["dense", "dense_f", "csr", "csc", "coo"]),
    bad=st.sampled_from([-1.5, np.nan, np.inf, -np.inf]),
    data=st.data(),
)
def test_check_values_names_first_offending_entry(shape, fmt, bad, data):
    """The error counts the offending values and names the first stored one's cell and gene."""
    n_obs, n_vars = shape
    X = np.ones(shape)
    k = data.draw(st.integers(1, X.size))
    flat = data.draw(st.lists(st.integers(0, X.size - 1), min_size=k, max_size=k, unique=True))
    rows, cols = np.unravel_index(np.array(flat), shape)
    X[rows, cols] = bad
    obs = [f"cell{i}" for i in range(n_obs)]
    var = [f"gene{j}" for j in range(n_vars)]
    M = {
        "dense": X,
        "dense_f": np.asfortranarray(X),
        "csr": sparse.csr_matrix(X),
        "csc": sparse.csc_matrix(X),
        "coo": sparse.coo_matrix(X),
    }[fmt]
    order = "F" if fmt in {"csc", "dense_f"} else "C"
    first = min(zip(rows, cols), key=lambda rc: np.ravel_multi_index(rc, shape, order=order))
    with pytest.raises(GclFormatError) as err:
        check_values(M, file="f.csv", obs_names=obs, var_names=var)
    msg = str(err.value)
    kind = "negative" if bad == -1.5 else "NaN (missing)" if np.isnan(bad) else "infinite"
    assert f"has {k} {kind} value{'s' if k > 1 else ''} (first at" in msg
    assert f"cell 'cell{first[0]}', gene 'gene{first[1]}'" in msg
    assert "f.csv" in msg
