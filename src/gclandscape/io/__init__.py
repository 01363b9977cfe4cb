"""Read and write single-cell data as AnnData: ``gcl.io.read`` and ``gcl.io.write``."""

from ._read import read
from ._write import write

__all__ = ["read", "write"]
