"""Tidy tables of results stored in AnnData.

Names load their module on first use so ``import gclandscape`` stays light.
"""

from __future__ import annotations

from ._tables import grn_edges

__all__ = ["grn_edges"]
