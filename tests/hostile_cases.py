"""The hostile-input cases the suite runs, with the answer each must get: one table for tests and docs.

Each test module parametrises over `ids(group)` and has one builder per case, so a case listed here and
not tested fails the suite. `python tests/hostile_cases.py > docs/reliability.md` regenerates the page
(a test checks it is up to date).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    given: str
    answer: str


EXIT2 = "exit 2, one line `contrasat: error: …`, every existing file untouched"
CONVERT = "converted, with a note in the job summary"

GROUPS = {
    "data_loss": "Data loss: outputs that would replace inputs or each other, bad output targets",
    "commit": "All or none: failures while writing, cancellation, leftovers of killed runs",
    "s1_units": "Sentinel-1 units and polarisations",
    "s2_bands": "Sentinel-2 bands, levels and scale",
    "geometry": "Georeferencing, areas and areas of interest",
    "model": "Models that do not behave as their card says",
    "series": "Pixel time series (classify-series)",
    "arguments": "Command-line arguments",
    "rasters": "Damaged or unusual input rasters",
}

CASES: list[Case] = [
    # data loss
    Case("out-is-s1", "data_loss", "`--out` names the `--s1` input", EXIT2),
    Case("out-is-s1-relative", "data_loss", "`--out ./x/../s1.tif` resolves to the input", EXIT2),
    Case("out-symlink-to-s1", "data_loss", "`--out` is a symlink to the input", EXIT2),
    Case("out-hardlink-to-s1", "data_loss", "`--out` is a hard link to the input", EXIT2),
    Case("out-is-s2-land-cover", "data_loss", "`land-cover --s2 y.tif --out y.tif`", EXIT2),
    Case("probabilities-is-s1", "data_loss", "`--probabilities` names the input", EXIT2),
    Case("out-is-pre-event", "data_loss", "`--out` names the `--pre-event` raster", EXIT2),
    Case("polygons-is-aoi", "data_loss", "`--polygons` names the `--aoi` file", EXIT2),
    Case("out-is-probabilities", "data_loss", "`--out` and `--probabilities` are one file", EXIT2),
    Case("out-is-vrt-source", "data_loss", "`--out` is a source file of the input VRT", EXIT2),
    Case("out-png", "data_loss", "`--out map.png`", EXIT2 + " (class rasters are GeoTIFF only)"),
    Case("out-jpg", "data_loss", "`--out map.jpg`", EXIT2),
    Case("probabilities-png", "data_loss", "`--probabilities p.png`", EXIT2),
    Case("out-no-extension", "data_loss", "`--out map` (no extension)", EXIT2),
    Case(
        "polygons-shp",
        "data_loss",
        "`--polygons p.shp` with an existing `--out`",
        EXIT2 + ", checked before any work",
    ),
    Case("statistics-xlsx", "data_loss", "`--statistics s.xlsx`", EXIT2),
    Case("out-fifo", "data_loss", "`--out` is an existing named pipe", EXIT2),
    Case("out-device", "data_loss", "`--out` is a device node (as root)", EXIT2),
    Case("out-folder", "data_loss", "`--out` is an existing folder", EXIT2),
    Case("out-readonly-folder", "data_loss", "`--out` in a read-only (immutable for root) folder", EXIT2),
    Case("out-missing-folder", "data_loss", "`--out` in a folder that does not exist", EXIT2),
    Case("series-out-is-stack", "data_loss", "`classify-series --out` names the stack", EXIT2),
    Case(
        "demo-out-is-file", "data_loss", "`demo --out` names an existing file", "exit 2, the file untouched"
    ),
    # all or none
    Case(
        "disk-full-tmpfs",
        "commit",
        "outputs on a 200 kB tmpfs (probabilities do not fit)",
        EXIT2 + ", no partials",
    ),
    Case(
        "disk-full-polygons",
        "commit",
        "no space left while writing polygons",
        EXIT2 + ", class raster not replaced",
    ),
    Case(
        "truncated-output",
        "commit",
        "an output fails verification when re-opened",
        EXIT2 + ", nothing renamed",
    ),
    Case("rename-fails", "commit", "the second rename fails at commit", EXIT2 + ", first target restored"),
    Case(
        "stale-partial",
        "commit",
        "a `.partial` of the same output left by a killed run",
        "removed by the next run",
    ),
    Case("live-partial", "commit", "a `.partial` of a process still running", "left alone"),
    Case(
        "keyboard-interrupt",
        "commit",
        "Ctrl-C during the run",
        "`contrasat: cancelled`, exit 130, temporaries removed",
    ),
    Case(
        "sigterm",
        "commit",
        "SIGTERM during the run (how the plugin cancels)",
        "`contrasat: cancelled`, exit 130, temporaries removed",
    ),
]


def ids(group: str) -> list[str]:
    """Case ids of one group, in table order."""
    found = [c.id for c in CASES if c.group == group]
    assert found, f"no hostile cases in group {group}"
    return found


def markdown() -> str:
    """docs/reliability.md: what is checked and the answer to each case."""
    lines = [
        "# Reliability: hostile inputs and what Contrasat answers",
        "",
        "Generated from `tests/hostile_cases.py` (`python tests/hostile_cases.py > docs/reliability.md`);",
        "every row is a parametrised test case of the suite, run on copies of the bundled sample.",
        "",
        "## Rules",
        "- An input is never overwritten: every output path is compared with every input (after resolving",
        "  symlinks and relative paths, and as hard links) and with every other output, before any work.",
        "- All outputs of a job are checked up front (format by extension, folder, existing target must be a",
        "  regular file), written to hidden `.NAME.PID.partial.EXT` files, re-opened and verified, then renamed",
        "  together: all of them or none. Partials of killed runs are removed by the next run.",
        "- Suspicious input is converted with a note in the job summary, or refused: exit code 2 and one line",
        "  `contrasat: error: …`. Ctrl-C and SIGTERM end with `contrasat: cancelled` and exit code 130.",
        "- Areas are true areas on the WGS84 ellipsoid in any CRS, identical in the summary, CSV and polygons.",
        "",
        f"{len(CASES)} cases.",
    ]
    for group, title in GROUPS.items():
        rows = [c for c in CASES if c.group == group]
        if not rows:
            continue
        lines += ["", f"## {title}", "", "| case | given | answer |", "| --- | --- | --- |"]
        lines += [f"| `{c.id}` | {c.given} | {c.answer} |" for c in rows]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
