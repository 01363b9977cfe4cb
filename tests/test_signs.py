"""One sign vocabulary: every reader of a signed network accepts the same words (issue 20).

Four readers once kept four lists; a prior that BEELINE's reader accepted ('+'/'-') failed in
``fit_grn``. Each reader is asked for every word here, so a fifth list cannot drift apart.
"""

from __future__ import annotations

import pandas as pd
import pytest

from gclandscape._signs import SIGN_WORDS, parse_sign
from gclandscape.datasets._prior import to_signed_edges
from gclandscape.datasets._rules import network_from_edges
from gclandscape.io._beeline import read_reference_network
from gclandscape.landscape._regulator_genes import _prior_signs

WORDS = sorted(SIGN_WORDS)


def test_parse_sign_words_numbers_and_non_signs():
    assert [parse_sign(w) for w in ("ACTIVATES", " inhibitor ", "+1", "-")] == [1, -1, 1, -1]
    assert [parse_sign(v) for v in (3, "-0.25", 0, "0")] == [1, -1, 0, 0]
    assert [parse_sign(v) for v in ("", "dual", None, float("inf"), True)] == [None] * 5


@pytest.mark.parametrize("word", WORDS)
def test_every_reader_takes_every_sign_word(word, tmp_path):
    sign = SIGN_WORDS[word]
    cased = word.upper()  # any case
    path = tmp_path / "refNetwork.csv"
    path.write_text(f"Gene1,Gene2,Type\na,b,{cased}\n")
    assert read_reference_network(path)["sign"].tolist() == [sign]
    table = pd.DataFrame({"source": ["a"], "target": ["b"], "sign": [cased]})
    assert to_signed_edges(table)["sign"].tolist() == [sign]
    assert _prior_signs(table["sign"]).tolist() == [sign]
    edges = network_from_edges(table).edges()
    assert edges.loc[(edges["source"] == "a") & (edges["target"] == "b"), "sign"].tolist() == [sign]
