"""Regenerate the README's figure gallery (PNG files beside this script).

Run: ``.venv/bin/python docs/make_gallery.py`` (about 2–4 minutes on 2 CPU cores). Every
figure is drawn by ``gcl.pl`` from results computed on the embedded default dataset
(``gcl.datasets.myeloid()``), exactly as a user would: recipe → fit_grn → fit_landscape →
perturb / screen / mutational_scan.
"""

from __future__ import annotations

from pathlib import Path

import gclandscape as gcl

HERE = Path(__file__).resolve().parent


def main() -> None:
    adata = gcl.datasets.myeloid()
    gcl.pp.recipe(adata, n_top_genes=500)
    gcl.landscape.fit_grn(adata, time_key="sim_time")
    gcl.landscape.fit_landscape(adata, groupby="celltype")
    gata1 = gcl.sim.perturb(adata, gcl.sim.Knockout("Gata1"), root="progenitor")
    table = gcl.sim.screen(adata, "knockouts", root="progenitor")
    scan = gcl.sim.mutational_scan(adata, n_mutations=200, root="progenitor")
    with gcl.pl.style():  # the publication style applies to figures made inside it
        figures = {
            "landscape": gcl.pl.landscape(adata),
            "vector_field": gcl.pl.vector_field(adata),
            "grn": gcl.pl.grn(adata),
            "fate_shift": gcl.pl.fate_shift(gata1),
            "trajectories": gcl.pl.trajectories(adata, gata1),
            "screen": gcl.pl.screen(table),
            "mutational_scan": gcl.pl.mutational_scan(scan),
        }
        for name, fig in figures.items():
            fig.savefig(HERE / f"{name}.png", dpi=110, bbox_inches="tight")
            print(f"wrote docs/{name}.png")


if __name__ == "__main__":
    main()
