"""Render job outputs: class rasters and polygons with the colours and names of their class table."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsColorRampShader,
    QgsFillSymbol,
    QgsPalettedRasterRenderer,
    QgsRasterLayer,
    QgsRasterRange,
    QgsRasterShader,
    QgsRendererCategory,
    QgsSingleBandPseudoColorRenderer,
)
from qgis.PyQt.QtGui import QColor

# Flood class 0 is "dry": drawn opaque it would hide the whole basemap, so it is made transparent
# whatever colour the card gives it. It keeps its legend entry so the class table stays complete.
FLOOD_TRANSPARENT_VALUES: frozenset[int] = frozenset({0})


class ClassLike(Protocol):
    """The fields of `models.card.ClassInfo` that styling needs (kept structural: no models import)."""

    value: int
    name: str
    color: str


def parse_color(text: str) -> QColor:
    """A QColor from the card's '#rrggbb' or '#rrggbbaa'.

    Qt reads eight hex digits as '#aarrggbb', so the alpha byte is split off here first.
    """
    digits = text.strip().lstrip("#")
    if len(digits) not in (6, 8) or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise ValueError(f"not a '#rrggbb' or '#rrggbbaa' colour: {text!r}")
    color = QColor(f"#{digits[:6]}")
    color.setAlpha(int(digits[6:], 16) if len(digits) == 8 else 255)
    return color


def class_renderer(
    layer: QgsRasterLayer,
    classes: Sequence[ClassLike],
    *,
    band: int = 1,
    transparent_values: Iterable[int] = (),
) -> QgsPalettedRasterRenderer:
    """A paletted renderer with one entry per card class, labelled with the class name."""
    hidden = set(transparent_values)
    entries = []
    for cls in classes:
        color = parse_color(cls.color)
        if cls.value in hidden:
            color.setAlpha(0)
        entries.append(QgsPalettedRasterRenderer.Class(int(cls.value), color, str(cls.name)))
    return QgsPalettedRasterRenderer(layer.dataProvider(), band, entries)


def style_class_layer(
    layer: QgsRasterLayer,
    classes: Sequence[ClassLike],
    nodata: int | None = 255,
    *,
    transparent_values: Iterable[int] = (),
) -> None:
    """Apply the card's class table to a uint8 class raster; nodata pixels stay transparent."""
    provider = layer.dataProvider()
    if nodata is not None and not provider.sourceHasNoDataValue(1):
        # The runtime writes nodata into the GeoTIFF; this covers files written without it.
        provider.setUserNoDataValue(1, [QgsRasterRange(nodata, nodata)])
    layer.setRenderer(class_renderer(layer, classes, transparent_values=transparent_values))
    layer.triggerRepaint()


def polygon_renderer(classes: Sequence[ClassLike], field: str = "class") -> QgsCategorizedSymbolRenderer:
    """Categorised fill renderer for class polygons: one category per visible class, labelled with its name."""
    categories = []
    for cls in classes:
        color = parse_color(cls.color)
        if color.alpha() == 0:
            # a transparent class (flood 'dry') is background: forcing it opaque gave a black legend entry
            continue
        symbol = QgsFillSymbol.createSimple({"outline_width": "0.1"})
        symbol.setColor(color)
        categories.append(QgsRendererCategory(int(cls.value), symbol, str(cls.name)))
    return QgsCategorizedSymbolRenderer(field, categories)


def probability_renderer(layer: QgsRasterLayer, band: int) -> QgsSingleBandPseudoColorRenderer:
    """Probability 0..1 of one class as a white-to-blue ramp."""
    shader_fn = QgsColorRampShader(0.0, 1.0)
    shader_fn.setColorRampType(QgsColorRampShader.Interpolated)
    shader_fn.setColorRampItemList(
        [
            QgsColorRampShader.ColorRampItem(0.0, QColor(255, 255, 255, 0), "0"),
            QgsColorRampShader.ColorRampItem(0.5, QColor(107, 174, 214), "0.5"),
            QgsColorRampShader.ColorRampItem(1.0, QColor(8, 48, 107), "1"),
        ]
    )
    shader = QgsRasterShader(0.0, 1.0)
    shader.setRasterShaderFunction(shader_fn)
    return QgsSingleBandPseudoColorRenderer(layer.dataProvider(), band, shader)
