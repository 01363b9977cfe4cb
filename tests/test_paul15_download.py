"""``gcl.datasets.paul15``: the download path against a loopback HTTP server, never the internet.

A small file in scanpy's ``paul15.h5`` layout is written to ``tmp_path`` and served by
``http.server`` on 127.0.0.1; the module's URL, mirrors, checksum and cache folder are
monkeypatched to point at it.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

import gclandscape as gcl
from gclandscape._errors import GclDownloadError, GclFileNotFoundError, GclFormatError
from gclandscape._keys import Key
from gclandscape.datasets import _paul15

N_CELLS = 40
# (name in the file, informative?) — "Gata1;Gata1-alt" keeps its first name; "Bad" is not
# informative; "Car1" appears twice and only its first copy is kept.
GENES = [
    ("Car1", True),
    ("Gata1;Gata1-alt", True),
    ("Bad", False),
    ("Mpo", True),
    ("Car1", True),
    ("Elane", True),
]


def _counts(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(3.0, size=(len(GENES), N_CELLS)).astype(np.float64)  # genes × cells


def _clusters() -> np.ndarray:
    return (np.arange(N_CELLS) % 19 + 1).astype(np.float64)  # every cluster 1..19


def write_scanpy_paul15(path: Path, counts: np.ndarray | None = None) -> np.ndarray:
    """Write a tiny file in the layout of scanpy's paul15.h5; return its genes × cells matrix."""
    counts = _counts() if counts is None else counts
    with h5py.File(path, "w") as f:
        f["data.debatched"] = counts
        f["data.debatched_rownames"] = np.array([g.encode() for g, _ in GENES])
        f["data.debatched_colnames"] = np.array([f"W{31000 + i}".encode() for i in range(N_CELLS)])
        f["cluster.id"] = _clusters()[None, :]
        f["info.genes_strings"] = np.array(
            [g.split(";")[0].encode() for g, info in GENES if info] + [b"NotInData"]
        )
    return counts


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _CountingHandler(http.server.SimpleHTTPRequestHandler):
    requests_seen: list[str]

    def do_GET(self):
        self.requests_seen.append(self.path)
        super().do_GET()

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path / "www"`` on a loopback port; yields (base_url, served dir, requests)."""
    root = tmp_path / "www"
    root.mkdir()
    seen: list[str] = []
    handler = functools.partial(
        type("H", (_CountingHandler,), {"requests_seen": seen}), directory=str(root)
    )
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    state = {"httpd": httpd}
    yield f"http://{host}:{port}", root, seen, state
    if state["httpd"] is not None:
        httpd.shutdown()
        httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(_paul15.DATA_DIR_ENV, str(folder))
    monkeypatch.setattr(_paul15, "PAUL15_MIRROR_URLS", ())
    monkeypatch.setattr(_paul15, "DOWNLOAD_TIMEOUT", 5.0)
    return folder


def _dead_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/paul15.h5"  # the port is closed again: connection refused


def test_download_once_then_cache(server, cache, monkeypatch):
    base, root, seen, state = server
    counts = write_scanpy_paul15(root / "paul15.h5")
    monkeypatch.setattr(_paul15, "PAUL15_URL", f"{base}/paul15.h5")
    monkeypatch.setattr(_paul15, "PAUL15_SHA256", _sha256(root / "paul15.h5"))

    adata = gcl.datasets.paul15()
    assert seen == ["/paul15.h5"]
    assert (cache / "paul15.h5").read_bytes() == (root / "paul15.h5").read_bytes()

    # informative genes only, first of two names, duplicates dropped, sorted as scanpy does
    assert list(adata.var_names) == ["Car1", "Elane", "Gata1", "Mpo"]
    assert adata.n_obs == N_CELLS
    assert adata.obs_names[0] == "W31000"
    rows = {"Car1": 0, "Elane": 5, "Gata1": 1, "Mpo": 3}
    expected = np.stack([counts[rows[g]] for g in adata.var_names], axis=1)
    got = adata.layers[Key.layers.counts].toarray()
    assert np.issubdtype(got.dtype, np.integer)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(adata.X.toarray(), expected)

    clusters = adata.obs["paul15_clusters"].astype(str)
    assert clusters.iloc[0] == "1Ery"
    assert clusters.iloc[6] == "7MEP"
    assert clusters.iloc[18] == "19Lymph"
    ct = adata.obs[Key.obs.celltype].astype(str)
    assert ct.iloc[6] == "Multipotent progenitors"
    assert ct.iloc[7] == "Megakaryocytes"
    assert ct.iloc[10] == "Dendritic cells"
    assert set(ct[clusters.str.endswith("Ery")]) == {"Erythrocyte"}
    assert set(ct[clusters.isin(["14Mo", "15Mo"])]) == {"Monocytes"}
    assert set(ct[clusters.isin(["16Neu", "17Neu"])]) == {"Neutrophils"}
    assert set(ct[clusters.isin(["12Baso", "13Baso"])]) == {"Basophils"}
    assert set(ct[clusters.isin(["9GMP", "10GMP"])]) == {"GMP"}

    # second call: the server is gone, the cached copy is verified and read
    state["httpd"].shutdown()
    state["httpd"].server_close()
    state["httpd"] = None
    again = gcl.datasets.paul15()
    assert seen == ["/paul15.h5"]
    np.testing.assert_array_equal(again.layers[Key.layers.counts].toarray(), expected)


def test_wrong_checksum_is_a_clear_error(server, cache, monkeypatch):
    base, root, _, _ = server
    write_scanpy_paul15(root / "paul15.h5")
    monkeypatch.setattr(_paul15, "PAUL15_URL", f"{base}/paul15.h5")
    monkeypatch.setattr(_paul15, "PAUL15_SHA256", "0" * 64)
    with pytest.raises(GclDownloadError, match="checksum") as info:
        gcl.datasets.paul15()
    assert "0" * 64 in str(info.value)
    assert not (cache / "paul15.h5").exists()  # the bad file is not kept


def test_corrupted_cache_is_replaced(server, cache, monkeypatch):
    base, root, seen, _ = server
    write_scanpy_paul15(root / "paul15.h5")
    monkeypatch.setattr(_paul15, "PAUL15_URL", f"{base}/paul15.h5")
    monkeypatch.setattr(_paul15, "PAUL15_SHA256", _sha256(root / "paul15.h5"))
    cache.mkdir()
    (cache / "paul15.h5").write_bytes(b"truncated")
    adata = gcl.datasets.paul15()
    assert seen == ["/paul15.h5"]
    assert adata.n_obs == N_CELLS
    assert _sha256(cache / "paul15.h5") == _paul15.PAUL15_SHA256


def test_offline_error_says_how_to_pass_a_local_file(cache, monkeypatch):
    url = _dead_url()
    monkeypatch.setattr(_paul15, "PAUL15_URL", url)
    with pytest.raises(GclDownloadError) as info:
        gcl.datasets.paul15()
    msg = str(info.value)
    assert "failed" in msg
    assert url in msg
    assert "no connection" in msg
    assert 'gcl.datasets.paul15(path="' in msg
    assert "paul15.h5" in msg
    assert _paul15.PAUL15_SHA256 in msg
    assert isinstance(info.value, OSError)  # GclDownloadError is also an OSError


def test_mirror_is_tried_when_the_first_url_fails(server, cache, monkeypatch):
    base, root, seen, _ = server
    write_scanpy_paul15(root / "paul15.h5")
    monkeypatch.setattr(_paul15, "PAUL15_URL", _dead_url())
    monkeypatch.setattr(_paul15, "PAUL15_MIRROR_URLS", (f"{base}/paul15.h5",))
    monkeypatch.setattr(_paul15, "PAUL15_SHA256", _sha256(root / "paul15.h5"))
    assert gcl.datasets.paul15().n_obs == N_CELLS
    assert seen == ["/paul15.h5"]


def test_http_error_is_a_download_error(server, cache, monkeypatch):
    base, _, _, _ = server
    monkeypatch.setattr(_paul15, "PAUL15_URL", f"{base}/missing.h5")
    with pytest.raises(GclDownloadError, match="server returned an error"):
        gcl.datasets.paul15()


def test_local_scanpy_file(tmp_path):
    counts = write_scanpy_paul15(tmp_path / "mine.h5")
    adata = gcl.datasets.paul15(path=tmp_path / "mine.h5")
    assert adata.shape == (N_CELLS, 4)
    assert adata.layers[Key.layers.counts].sum() == counts[[0, 1, 3, 5]].sum()


def test_local_non_integer_file_has_no_counts_layer(tmp_path):
    write_scanpy_paul15(tmp_path / "mine.h5", counts=_counts() + 0.5)
    adata = gcl.datasets.paul15(path=str(tmp_path / "mine.h5"))
    assert Key.layers.counts not in adata.layers


def test_missing_local_file(tmp_path):
    with pytest.raises(GclFileNotFoundError, match="does not exist"):
        gcl.datasets.paul15(path=tmp_path / "nope.h5")


def test_foreign_hdf5_file_is_a_format_error(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["data.debatched"] = np.ones((3, 2))
        f["data.debatched_rownames"] = np.array([b"a", b"b"])  # 2 names for 3 genes
        f["data.debatched_colnames"] = np.array([b"c1", b"c2"])
    with pytest.raises(GclFormatError, match="damaged"):
        gcl.datasets.paul15(path=tmp_path / "other.h5")


def test_local_h5ad_under_h5_suffix(tmp_path):
    """An .h5ad saved as .h5 (with scanpy's cluster column) is read through gcl.io.read."""
    io = pytest.importorskip("gclandscape.io")
    if not hasattr(io, "read"):
        pytest.skip("gcl.io.read is not available yet")
    import anndata as ad
    import pandas as pd
    import scipy.sparse as sp

    counts = _counts().T[:, [0, 1, 3]]
    clusters = [f"{c}{_paul15._SCANPY_CLUSTER_NAMES[c - 1]}" for c in _clusters().astype(int)]
    src = ad.AnnData(
        X=sp.csr_matrix(counts.astype(np.float32)),
        obs=pd.DataFrame({"paul15_clusters": clusters}, index=[f"c{i}" for i in range(N_CELLS)]),
        var=pd.DataFrame(index=["Car1", "Gata1", "Mpo"]),
    )
    src.write_h5ad(tmp_path / "paul15.h5")
    adata = gcl.datasets.paul15(path=tmp_path / "paul15.h5")
    assert adata.shape == (N_CELLS, 3)
    assert adata.obs[Key.obs.celltype].astype(str).iloc[7] == "Megakaryocytes"
    np.testing.assert_array_equal(np.asarray(adata.layers[Key.layers.counts].todense()), counts)
