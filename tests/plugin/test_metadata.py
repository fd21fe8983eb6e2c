"""metadata.txt is what the QGIS plugin manager and plugins.qgis.org read: it must be complete and consistent."""

from __future__ import annotations

import configparser
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
REQUIRED = ("name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "repository")


def _metadata() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(REPO / "metadata.txt", encoding="utf-8")
    return parser["general"]


def test_required_fields_present():
    meta = _metadata()
    missing = [key for key in REQUIRED if not meta.get(key, "").strip()]
    assert not missing, f"metadata.txt lacks {missing}"
    assert meta["name"] == "Contrasat"
    assert meta["qgisMinimumVersion"] == "3.22"
    assert meta["category"] == "Raster"
    assert meta.getboolean("hasProcessingProvider") is True
    for key in ("about", "changelog", "tags", "icon", "tracker"):
        assert meta.get(key, "").strip(), key
    for key in ("homepage", "tracker", "repository"):
        assert meta[key].startswith("https://"), key


def test_version_matches_package():
    with open(REPO / "pyproject.toml", "rb") as fh:
        version = tomllib.load(fh)["project"]["version"]
    assert _metadata()["version"] == version
    assert version in _metadata()["changelog"]


def test_icon_exists():
    icon = REPO / _metadata()["icon"]
    assert icon.is_file() and icon.read_text().lstrip().startswith("<?xml")
