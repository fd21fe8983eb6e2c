"""metadata.txt is what the QGIS plugin manager and plugins.qgis.org read: it must be complete and consistent."""

from __future__ import annotations

import configparser
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[2]
REQUIRED = ("name", "qgisMinimumVersion", "description", "about", "version", "author")
# Needed by plugins.qgis.org but left out until real ones exist (docs/qgis.md, "Before publishing").
PUBLISHING = ("email", "homepage", "tracker", "repository")


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
    for key in ("about", "changelog", "tags", "icon"):
        assert meta.get(key, "").strip(), key


def test_no_placeholder_contacts_and_publishing_gap_documented():
    meta = _metadata()
    for key in PUBLISHING:
        value = meta.get(key, "").strip()
        assert "example." not in value, key  # a made-up address or site is worse than none
        if value and key != "email":
            assert value.startswith("https://"), key
    missing = [key for key in PUBLISHING if not meta.get(key, "").strip()]
    guide = (REPO / "docs" / "qgis.md").read_text(encoding="utf-8")
    assert "Before publishing" in guide and all(f"`{key}`" in guide for key in missing)


def test_version_matches_package():
    with open(REPO / "pyproject.toml", "rb") as fh:
        version = tomllib.load(fh)["project"]["version"]
    assert _metadata()["version"] == version
    assert version in _metadata()["changelog"]


def test_icon_exists():
    icon = REPO / _metadata()["icon"]
    assert icon.is_file() and icon.read_text().lstrip().startswith("<?xml")
