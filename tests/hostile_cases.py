"""The hostile-input cases the suite runs, with the answer each must get: one table for tests and docs.

Each test module parametrises over `ids(group)` and has one builder per case, so a case listed here and
not tested fails the suite. `python tests/hostile_cases.py > docs/reliability.md` regenerates the page
(a test checks it is up to date).
"""

from __future__ import annotations

import stat
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
    "batch": "Many scenes (`contrasat batch`)",
    "finetune": "Fine-tuning on the analyst's labels (`contrasat finetune`)",
    "training": "Training recipes and plans (`contrasat train`)",
    "clipping": "Rasters clipped from a larger scene (tests/models/test_clipping.py)",
}

# fmt: off
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
    Case("polygons-shp", "data_loss", "`--polygons p.shp` with an existing `--out`", EXIT2 + ", checked before any work"),
    Case("statistics-xlsx", "data_loss", "`--statistics s.xlsx`", EXIT2),
    Case("out-fifo", "data_loss", "`--out` is an existing named pipe", EXIT2),
    Case("out-device", "data_loss", "`--out` is a device node (as root)", EXIT2),
    Case("out-folder", "data_loss", "`--out` is an existing folder", EXIT2),
    Case("out-readonly-folder", "data_loss", "`--out` in a read-only (immutable for root) folder", EXIT2),
    Case("out-read-only-file", "data_loss", "`--out` names an existing read-only file", EXIT2),
    Case("batch-summary-is-input", "data_loss", "`batch --summary` names a scene's input raster", EXIT2 + ", checked before any scene runs"),
    Case("batch-summary-is-scene-list", "data_loss", "`batch scenes.csv --summary scenes.csv`", EXIT2),
    Case("batch-summary-is-scene-output", "data_loss", "`batch --statistics --summary` names a scene's area CSV", EXIT2),
    Case("out-missing-folder", "data_loss", "`--out` in a folder that does not exist", EXIT2),
    Case("series-out-is-stack", "data_loss", "`classify-series --out` names the stack", EXIT2),
    Case("demo-out-is-file", "data_loss", "`demo --out` names an existing file", "exit 2, the file untouched"),
    # all or none
    Case("disk-full-tmpfs", "commit", "outputs on a 200 kB tmpfs (probabilities do not fit)", EXIT2 + ", no partials"),
    Case("disk-full-polygons", "commit", "no space left while writing polygons", EXIT2 + ", class raster not replaced"),
    Case("truncated-output", "commit", "an output fails verification when re-opened", EXIT2 + ", nothing renamed"),
    Case("rename-fails", "commit", "the second rename fails at commit", EXIT2 + ", first target restored"),
    Case("stale-partial", "commit", "a `.partial` of the same output left by a killed run", "removed by the next run"),
    Case("live-partial", "commit", "a `.partial` of a process still running", "left alone"),
    Case("keyboard-interrupt", "commit", "Ctrl-C during the run", "`contrasat: cancelled`, exit 130, temporaries removed"),
    Case("sigterm", "commit", "SIGTERM during the run (how the plugin cancels)", "`contrasat: cancelled`, exit 130, temporaries removed"),
    Case("ctrl-c-in-commit", "commit", "Ctrl-C while the outputs are renamed into place", "held until every rename is done, then `contrasat: cancelled`, exit 130; the outputs all new, no `.backup` left"),
    Case("killed-in-commit-two-folders", "commit", "killed mid-commit with the map and the probabilities in two folders", "a later run naming an output in either folder puts both old files back"),
    Case("stale-journal-unreadable", "commit", "a damaged commit journal of a dead run in the output folder", "left alone for a person to look at; the run works"),
    Case("killed-in-commit", "commit", "the process killed between two renames of the commit", "the next run naming any output in the folder puts every old output back from the commit's journal"),
    # sentinel-1 units and polarisations
    Case("s1-linear-power", "s1_units", "S1 in linear power", CONVERT + " (10·log10), same map as dB"),
    Case("s1-amplitude", "s1_units", "S1 as amplitude (sqrt of power)", CONVERT + " (20·log10), same map as dB"),
    Case("s1-db-x100-int16", "s1_units", "int16 dB × 100 with nodata -9999", CONVERT + " (÷100), same map"),
    Case("s1-db-x10-int16", "s1_units", "int16 dB × 10", CONVERT + " (÷10), same map"),
    Case("s1-file-scale", "s1_units", "int16 with the file's own scale 0.01", CONVERT + " (file scale applied)"),
    Case("s1-uint16-dn", "s1_units", "uint16 uncalibrated digital numbers", EXIT2),
    Case("s1-uint8-rescaled", "s1_units", "uint8 rescaled SAR", EXIT2),
    Case("s1-all-zero", "s1_units", "every pixel 0 (no nodata declared)", EXIT2),
    Case("s1-constant", "s1_units", "every pixel -15 dB", EXIT2),
    Case("s1-hh-hv", "s1_units", "bands described HH/HV", EXIT2 + " (never read as VV/VH)"),
    Case("s1-swapped-bands", "s1_units", "VH, VV order without descriptions", EXIT2 + " (VH brighter than VV)"),
    Case("s1-int8-db", "s1_units", "int8 whole dB", "read as dB, no conversion"),
    Case("s1-huge-nodata", "s1_units", "nodata -3.4e38", "masked, same map"),
    Case("s1-undeclared-nodata", "s1_units", "int16 dB × 100 with -9999 fill but no nodata declared", "fill treated as nodata, with a warning; same map"),
    Case("s1-zero-border-linear", "s1_units", "linear power with a 0-filled border, no nodata declared", "border is nodata (not -50 dB water), with a warning"),
    Case("s1-coarse-pixels", "s1_units", "S1 at 100 m pixels for a 10 m model", "mapped, with a warning naming both resolutions"),
    Case("s1-single-band", "s1_units", "only one band", EXIT2),
    Case("s1-float-db-file-scale", "s1_units", "float dB with a file scale of 0.01 (values become ~0 dB)", EXIT2 + " (names the median dB and the expected range)"),
    Case("s1-description-ratio", "s1_units", "bands described 'VH/VV ratio' and 'VH'", EXIT2 + " (names the band and the accepted descriptions)"),
    Case("s1-description-difference", "s1_units", "bands described 'VV' and 'VV-VH'", EXIT2),
    Case("s1-description-angle", "s1_units", "bands described 'VV' and 'incidence angle'", EXIT2 + " (VH missing)"),
    # sentinel-2 bands, levels and scale
    Case("s2-l2a-scl-needs-b10", "s2_bands", "L2A 12 bands + SCL for the bundled model (needs B10)", EXIT2 + " (says L2A has no B10)"),
    Case("s2-l2a-12-needs-b10", "s2_bands", "L2A 12 bands, no descriptions, model needs B10", EXIT2),
    Case("s2-l2a-scl-by-description", "s2_bands", "L2A + SCL in shuffled order, described", "bands mapped by description, same map as L1C"),
    Case("s2-l2a-12-by-count", "s2_bands", "L2A 12 bands without descriptions, model without B10", "L2A order, same map as L1C"),
    Case("s2-float-reflectance", "s2_bands", "float reflectance 0..1", CONVERT + " (× 10000), same map"),
    Case("s2-uint8", "s2_bands", "8-bit visual product", EXIT2),
    Case("s2-generic-band-names", "s2_bands", "13 bands described 'Band 1'..'Band 13'", "L1C order, same map"),
    Case("s2-uint16-file-scale-offset", "s2_bands", "uint16 with the file's scale 0.0001 and offset -0.1", CONVERT + " (units decided after scaling), same map"),
    Case("s2-implausible-scale", "s2_bands", "uint16 with a wrong file scale 10 (reflectance far above 1.5)", EXIT2 + " (names the reflectance span)"),
    Case("s2-four-bands", "s2_bands", "4 bands described B02, B03, B04, B08 for a 13-band model", EXIT2 + " (names the missing bands, not 'L2A')"),
    # georeferencing, areas and areas of interest
    Case("crs-no-geotransform", "geometry", "a CRS but no geotransform", EXIT2),
    Case("rotated-geotransform", "geometry", "rotation terms in the geotransform", EXIT2),
    Case("gcps-only", "geometry", "georeferenced by GCPs only", EXIT2),
    Case("s1-no-crs", "geometry", "no CRS", EXIT2),
    Case("areas-epsg3857", "geometry", "S1 in web mercator, with CSV and polygons", "true areas (not × 1.62); CSV = summary = polygons"),
    Case("areas-utm", "geometry", "S1 in UTM, with CSV and GeoJSON polygons", "true areas; CSV = summary = polygons"),
    Case("aoi-self-intersecting", "geometry", "a bow-tie AOI", "repaired with make_valid (both lobes kept), with a note"),
    Case("aoi-zero-area", "geometry", "an AOI polygon with no area", EXIT2),
    Case("aoi-sliver", "geometry", "an AOI thinner than a pixel, covering no pixel centre", EXIT2),
    Case("aoi-point", "geometry", "an AOI that is a point", EXIT2),
    Case("aoi-line", "geometry", "an AOI that is a line", EXIT2),
    Case("aoi-not-vector", "geometry", "an AOI file that is not a vector file", EXIT2),
    Case("aoi-outside", "geometry", "an AOI away from the raster", EXIT2),
    Case("s2-other-crs-partial-overlap", "geometry", "S2 in UTM covering half of S1 (fusion)", "S1 grid; pixels without S2 are nodata"),
    Case("one-pixel-raster", "geometry", "a 1 × 1 pixel S1 raster", "mapped, with a warning that it is smaller than one tile"),
    # models that do not behave as their card says
    Case("model-wrong-channels", "model", "network takes 3 channels, card lists 2 bands", EXIT2),
    Case("model-wrong-classes", "model", "network answers 2 classes, card lists 3", EXIT2),
    Case("model-half-resolution", "model", "network output at half resolution", EXIT2),
    Case("model-vector-output", "model", "network outputs (N, C) for a map task", EXIT2),
    Case("model-bad-colour", "model", "card colour 'blue'", EXIT2),
    Case("model-all-nan", "model", "network answers NaN everywhere", EXIT2),
    Case("model-partial-nan", "model", "network answers NaN on some pixels", "those pixels nodata, with a warning"),
    Case("model-is-folder", "model", "`--model` names a folder", EXIT2),
    Case("model-empty-file", "model", "`--model` is a 0-byte .onnx file", EXIT2),
    Case("model-wrong-task", "model", "a land-cover model for map-floods", EXIT2),
    Case("card-mean-string", "model", "card mean given as the string \"12\"", EXIT2 + " (names `inputs[0].mean[0]`), before any output is planned"),
    Case("card-clip-string", "model", "card clip given as \"-50,5\"", EXIT2 + " (names `inputs[0].clip`)"),
    Case("card-resolution-string", "model", "card `resolution_m` given as \"10 m\"", EXIT2 + " (names `resolution_m`)"),
    Case("card-null-class-name", "model", "a class name null in the card", EXIT2 + " (names `classes[1].name`), nothing written"),
    # pixel time series
    Case("series-red-reflectance", "series", "a stack of red reflectance (0..0.3) as NDVI", EXIT2),
    Case("series-red-dn", "series", "a stack of red DNs (500..2500) as NDVI", EXIT2),
    Case("series-bad-dates", "series", "`--dates 2020-13-45`", EXIT2),
    Case("series-s2-uint8", "series", "dated S2 rasters stored as an 8-bit visual product", EXIT2),
    Case("series-s2-date-elsewhere", "series", "one dated S2 raster 50 km away from the others", EXIT2),
    Case("series-s2-no-crs", "series", "dated S2 rasters without a CRS", EXIT2),
    Case("series-s1-raster", "series", "an S1 raster (VV, VH) given as the stack", EXIT2 + " (says it holds Sentinel-1 bands)"),
    # command-line arguments
    Case("batch-0", "arguments", "`--batch 0`", EXIT2),
    Case("batch-negative", "arguments", "`--batch -1`", EXIT2),
    Case("tile-0", "arguments", "`--tile 0`", EXIT2),
    Case("tile-not-multiple-of-16", "arguments", "`--tile 100`", EXIT2),
    Case("threads-negative", "arguments", "`--threads -1`", EXIT2),
    Case("threads-huge", "arguments", "`--threads 100000`", "capped at the core count, with a warning"),
    Case("overlap-negative", "arguments", "`--overlap -1`", EXIT2),
    Case("overlap-too-big", "arguments", "`--tile 64 --overlap 40`", EXIT2),
    Case("batch-not-a-number", "arguments", "`--batch four`", EXIT2),
    Case("provider-unknown", "arguments", "`--provider tpu`", EXIT2),
    Case("provider-cuda-absent", "arguments", "`--provider cuda` on an onnxruntime without CUDA (the CPU engine)", EXIT2 + ", no run on the CPU instead"),
    # damaged or unusual rasters
    Case("truncated-cog", "rasters", "a COG cut at 60 % (opens, tiles missing)", EXIT2 + ", no partial output"),
    Case("truncated-tiff", "rasters", "a GeoTIFF cut at 60 % (header lost)", EXIT2),
    Case("vrt-missing-source", "rasters", "a VRT whose source file is gone", EXIT2),
    Case("pre-event-other-units", "rasters", "pre-event in linear power, event in dB", "each converted on its own, with a note"),
    Case("pre-event-is-s1", "rasters", "`--pre-event` is the `--s1` file", EXIT2),
    Case("empty-file", "rasters", "a 0-byte .tif", EXIT2),
    Case("s1-is-folder", "rasters", "`--s1` names a folder", EXIT2),
    Case("s1-all-nodata", "rasters", "every pixel NaN", EXIT2),
    # finetune
    Case("finetune-threads-huge", "finetune", "`finetune --threads 100000` (was exit 1 with no message, a segfault with `-v`)", "capped at the core count with a note, as the mapping commands do"),
    Case("finetune-threads-zero", "finetune", "`finetune --threads 0`", EXIT2),
    # training recipes
    Case("config-steps-text", "training", "a recipe with `steps = \"abc\"` (`train flood train`)", EXIT2 + ", naming the field"),
    Case("config-steps-fraction", "training", "a recipe with `steps = 1.5`", EXIT2 + ", naming the field"),
    Case("config-batch-zero", "training", "a recipe with `batch = 0` (`train contrastive pretrain`)", EXIT2 + ", naming the field"),
    Case("plan-steps-text", "training", "a LORO plan whose recipe has `steps = \"abc\"` (`train flood loro`)", EXIT2 + ", naming the recipe and field"),
    Case("steps-flag-zero", "training", "`contrasat train flood train --steps 0`", EXIT2),
    # batch
    Case("batch-workers-negative", "batch", "`batch --workers -2`", EXIT2 + ", no cluster started"),
    Case("batch-cuda-without-cuda", "batch", "`batch --provider cuda` on an onnxruntime without CUDA", "each scene fails with that reason, exit 1, no map written on the CPU"),
    Case("batch-rerun-all-done", "batch", "a re-run when every scene is already complete", "exit 0, every scene 'already complete', no cluster started"),
    Case("batch-out-is-file", "batch", "`batch --out` names an existing file", EXIT2 + " (was `File exists`)"),
    Case("batch-summary-missing-folder", "batch", "`batch --summary` in a folder that does not exist", EXIT2 + ", no output folder left behind"),
    Case("batch-missing-scene-input", "batch", "a scene list row whose raster does not exist", "that scene fails with `input not found: PATH`, the others are mapped, exit 1"),
    Case("batch-resources-malformed", "batch", "`batch --resources GPU=x`", EXIT2),
    Case("batch-empty-scene-list", "batch", "a scene list with a header and no rows", EXIT2),
    Case("batch-scheduler-unreachable", "batch", "`batch --scheduler` at an address nobody listens on", EXIT2 + " after Dask's connect timeout"),
    Case("batch-quiet", "batch", "`batch -q` on a LocalCluster", "nothing on stderr (Dask logs at the command's level)"),
    Case("pre-event-20m", "rasters", "pre-event at 20 m, event at 10 m", "resampled onto the event's grid, with a warning that water edges may show as new flood"),
    Case("pre-event-40m", "rasters", "pre-event at 40 m, event at 10 m", EXIT2 + " (at most 2.5 × the event's pixel size)"),
    # rasters clipped from a larger scene
    Case("clip-random-crops", "clipping", "crops of 256..512 px at random places of the 9 Sen1Floods11 chips and the bundled sample, half of them the most watery of 30 candidate windows, default flood model", "each crop's map agrees with the whole chip's map on ≥ 98 % of its pixels, or the job summary warns that the level cannot be trusted and says to map the whole scene with the area as the area of interest"),
    Case("clip-mostly-water-small", "clipping", "a 100 × 60 crop of the most watery part of a chip", "mapped, with warnings: smaller than one tile; no dry-land level to align (or a lone dark peak), map the whole scene with an area of interest"),
    Case("clip-tiny-3x3", "clipping", "a 3 × 3 pixel crop", "mapped, with warnings: smaller than one tile, too few pixels for the level"),
    Case("clip-land-cover", "clipping", "a 256 × 300 crop of the S2 sample, land-cover model", "≥ 98 % agreement with the whole sample's land-cover map"),
]
# fmt: on


def snapshot(folder) -> dict[str, object]:
    """Every entry of a folder tree: file bytes, or the kind of a special file."""
    found = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            found[str(path.relative_to(folder))] = path.read_bytes()
        else:
            found[str(path.relative_to(folder))] = stat.S_IFMT(mode)
    return found


def write_vrt(path, source, bands=2, size=512) -> None:
    """A hand-written VRT reading `bands` bands of `source` (no GDAL command-line tools needed)."""
    import rasterio

    with rasterio.open(source) as src:
        crs, gt, dtype = src.crs.to_wkt(), src.transform.to_gdal(), src.dtypes[0]
        names = src.descriptions
    dtypes = {"float32": "Float32", "int16": "Int16", "uint16": "UInt16", "uint8": "Byte"}
    band_xml = "".join(
        f'<VRTRasterBand dataType="{dtypes[dtype]}" band="{b}"><Description>{names[b - 1] or ""}</Description>'
        f'<SimpleSource><SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>{b}</SourceBand>'
        f'<SrcRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/><DstRect xOff="0" yOff="0" xSize="{size}" '
        f'ySize="{size}"/></SimpleSource></VRTRasterBand>'
        for b in range(1, bands + 1)
    )
    path.write_text(
        f'<VRTDataset rasterXSize="{size}" rasterYSize="{size}"><SRS>{crs}</SRS>'
        f"<GeoTransform>{', '.join(map(str, gt))}</GeoTransform>{band_xml}</VRTDataset>"
    )


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
        "- The renames are one commit: a journal naming every target, backup and temporary is written (fsynced)",
        "  before the first rename, Ctrl-C and SIGTERM are held until the last one, and the next run that names",
        "  an output in the folder finishes or undoes a commit that was killed (`tests/models/test_commit_faults.py`",
        "  injects a fault, a signal and a kill between every two steps).",
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
    lines += ["", "## What a job reports", "", PROTOCOL.strip()]
    return "\n".join(lines) + "\n"


PROTOCOL = """
`contrasat --progress json COMMAND ...` (or `--progress json` after the command) writes one JSON object per
line on stderr; the QGIS plugin runs jobs as subprocesses and reads them (lines that are not JSON are to be
ignored). `--progress auto` (default) shows a bar on a terminal, `none` nothing.

| event | fields |
| --- | --- |
| `{"event": "progress", "fraction": 0.42}` | at most about 100 per job, non-decreasing, ends at 1.0 |
| `{"event": "message", "level": "info", "text": "..."}` | notes: conversions, repairs, caps (`info` or `warning`) |
| `{"event": "done", "result": {...}}` | the job summary, as printed by `--json` |
| `{"event": "error", "message": "...", "exit": 2}` | the one-line error |
| `{"event": "cancelled", "exit": 130}` | Ctrl-C or SIGTERM; every temporary removed |

A job ends with exactly one of `done`, `error`, `cancelled`, and the exit code matches (0, 2, 130).
The summary (`--json` on stdout, `result` above): `task`, `outputs` (`classes`, `probabilities`,
`polygons`, `statistics`: paths or null), `model`, `provider`, `shape` [rows, cols], `crs`, `classes`
(value, name, colour), `class_area_km2`, `flooded_km2` (flood jobs), `notes` (level, text).
`contrasat models --json` lists the bundled models; `contrasat --version` prints the version.
"""


if __name__ == "__main__":
    print(markdown(), end="")
