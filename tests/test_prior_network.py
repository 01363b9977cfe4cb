"""``gcl.datasets.prior_network``: local files in each sign convention, bad files, the download.

The download is exercised against a loopback HTTP server (``http.server`` on 127.0.0.1) with
the module's URLs, checksum and cache folder monkeypatched; never the internet.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading

import pandas as pd
import pytest

from gclandscape._errors import GclDownloadError, GclError, GclFileNotFoundError, GclFormatError
from gclandscape.datasets import _paul15, _prior
from gclandscape.datasets._prior import prior_network

EXPECTED = pd.DataFrame(
    {"source": ["Spi1", "Gata1", "Spi1"], "target": ["Cebpa", "Spi1", "Gfi1"], "sign": [1, -1, -1]}
)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("plus_minus.csv", "source,target,sign\nSpi1,Cebpa,+\nGata1,Spi1,-\nSpi1,Gfi1,-\n"),
        ("ones.tsv", "source\ttarget\tweight\nSpi1\tCebpa\t1\nGata1\tSpi1\t-1\nSpi1\tGfi1\t-1\n"),
        (
            "words.csv",
            "Source,Target,Mode\nSpi1,Cebpa,Activation\nGata1,Spi1,repression\nSpi1,Gfi1,REPRESSION\n",
        ),
        (
            "float.txt",
            "source\ttarget\tmor\nSpi1\tCebpa\t0.37\nGata1\tSpi1\t-2.5\nSpi1\tGfi1\t-1e-3\n",
        ),
    ],
)
def test_local_file_each_sign_convention(tmp_path, name, text):
    f = tmp_path / name
    f.write_text(text)
    edges = prior_network("mouse", path=f)
    pd.testing.assert_frame_equal(edges, EXPECTED)


def test_local_file_repeats_and_gene_filter(tmp_path):
    f = tmp_path / "net.csv"
    f.write_text(
        "source,target,sign,extra\nSpi1,Cebpa,+,a\nSpi1,Cebpa,-,b\nGata1,Spi1,-,c\nSpi1,Gfi1,-,d\n"
    )
    edges = prior_network("human", path=f)  # organism is only recorded for a local file
    assert list(edges.columns) == ["source", "target", "sign"]
    assert edges["sign"].tolist() == [1, -1, -1]  # the repeated pair keeps its first row
    sub = prior_network("human", path=f, genes=["Spi1", "Cebpa", "Gfi1"])
    assert list(zip(sub["source"], sub["target"])) == [("Spi1", "Cebpa"), ("Spi1", "Gfi1")]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("source,gene,sign\nA,B,+\n", "no column 'target'"),
        ("source,target\nA,B\n", "no sign column"),
        ("source,target,sign\nA,B,+\nB,C,up\nC,A,\n", r"2 rows .*'up'.*data row 2"),
        ("source,target,weight\nA,B,0\n", "not a sign"),
        ("source,target,sign\nA,,+\n", "empty source or target"),
        ("source,target,sign\n", "no edges"),
    ],
)
def test_bad_file_clear_error(tmp_path, text, match):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(GclFormatError, match=match):
        prior_network("human", path=f)


def test_missing_file_and_unknown_organism(tmp_path):
    with pytest.raises(GclFileNotFoundError, match="without a path"):
        prior_network("human", path=tmp_path / "nope.csv")
    with pytest.raises(GclError, match="organism='zebrafish'"):
        prior_network("zebrafish")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(_paul15.DATA_DIR_ENV, str(folder))
    return folder


def test_offline_error_names_url_and_path_alternative(cache, monkeypatch):
    import pooch
    import requests

    class Offline:
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, url, output_file, pooch_obj, check_only=False):
            raise requests.exceptions.ConnectionError("Name or service not known")

    monkeypatch.setattr(pooch, "HTTPDownloader", Offline)
    with pytest.raises(GclDownloadError) as err:
        prior_network("human")
    msg = str(err.value)
    assert _prior.COLLECTRI_URL in msg
    assert "no connection" in msg
    assert 'path="/path/to/network.csv"' in msg
    assert str(cache / _prior.COLLECTRI_FILENAME) in msg


# CollecTRI's layout (decoupler reads the same columns); AP1 is one of its two complexes
COLLECTRI = (
    "source,target,weight,resources,references,sign_decision\n"
    "SPI1,CEBPA,1,ExTRI;HTRI,PMID1,default activation\n"
    "GATA1,SPI1,-1,ExTRI,PMID2,PMID\n"
    "SPI1,GFI1,-1,ExTRI,,PMID\n"
    "AP1,CEBPA,1,ExTRI,PMID3,default activation\n"
    "MYC,CEBPA,1,ExTRI,PMID4,default activation\n"
)
# HCOP's columns used by the translation: SPI1 -> Spi1 (3 resources), GATA1 -> Gata1,
# CEBPA -> Cebpa, GFI1 -> Gfi1 and Gfi1b; MYC -> Myc with 2 resources only (dropped)
HCOP = (
    "human_entrez_gene\thuman_symbol\tmouse_symbol\tsupport\n"
    "1\tSPI1\tSpi1\tEnsembl,HGNC,NCBI\n"
    "2\tGATA1\tGata1\tEnsembl,HGNC,NCBI,OMA\n"
    "3\tCEBPA\tCebpa\tEnsembl,HGNC,NCBI\n"
    "4\tGFI1\tGfi1\tEnsembl,HGNC,NCBI\n"
    "4\tGFI1\tGfi1b\tEnsembl,PANTHER,OMA\n"
    "5\tMYC\tMyc\tEnsembl,HGNC\n"
)


@pytest.fixture
def server(tmp_path):
    """Serve ``tmp_path / "www"`` on a loopback port; yields (base_url, served dir, requests)."""
    root = tmp_path / "www"
    root.mkdir()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    host, port = httpd.server_address[:2]
    yield f"http://{host}:{port}", root, seen
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_download_checksum_cache_reuse_and_mouse(server, cache, monkeypatch):
    base, root, seen = server
    (root / "ct.csv").write_text(COLLECTRI)
    with gzip.open(root / "hcop.txt.gz", "wt") as fh:
        fh.write(HCOP)
    monkeypatch.setattr(_prior, "COLLECTRI_URL", f"{base}/ct.csv")
    monkeypatch.setattr(_prior, "HCOP_URL", f"{base}/hcop.txt.gz")
    monkeypatch.setattr(
        _prior, "COLLECTRI_MD5", hashlib.md5((root / "ct.csv").read_bytes()).hexdigest()
    )

    human = prior_network("human")
    assert seen == ["/ct.csv"]
    assert list(zip(human["source"], human["target"], human["sign"])) == [
        ("SPI1", "CEBPA", 1),
        ("GATA1", "SPI1", -1),
        ("SPI1", "GFI1", -1),  # a row without references is kept (decoupler drops it)
        ("AP1", "CEBPA", 1),
        ("MYC", "CEBPA", 1),
    ]
    again = prior_network("human")  # the cached copy: no second request
    assert seen == ["/ct.csv"]
    pd.testing.assert_frame_equal(again, human)

    mouse = prior_network("mouse")
    assert seen == ["/ct.csv", "/hcop.txt.gz"]
    assert sorted(zip(mouse["source"], mouse["target"], mouse["sign"])) == [
        ("Gata1", "Spi1", -1),
        ("Spi1", "Cebpa", 1),
        ("Spi1", "Gfi1", -1),
        ("Spi1", "Gfi1b", -1),
    ]  # AP1 (a complex) and MYC (too little orthology evidence) drop out
    prior_network("mouse")
    assert seen == ["/ct.csv", "/hcop.txt.gz"]


def test_download_checksum_mismatch(server, cache, monkeypatch):
    base, root, _ = server
    (root / "ct.csv").write_text(COLLECTRI)
    monkeypatch.setattr(_prior, "COLLECTRI_URL", f"{base}/ct.csv")
    with pytest.raises(GclDownloadError, match="checksum"):
        prior_network("human")  # the real CollecTRI MD5 does not match the served file
    assert not (cache / _prior.COLLECTRI_FILENAME).exists()


def test_exported_from_gcl_datasets():
    import gclandscape as gcl

    assert gcl.datasets.prior_network is prior_network
    assert "prior_network" in gcl.datasets.__all__
