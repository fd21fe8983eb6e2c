"""Contrasat: flood and land-cover mapping from Sentinel-1/2 for QGIS."""


def classFactory(iface):  # noqa: N802 - name fixed by QGIS
    """QGIS plugin entry point: build the plugin object for this QGIS interface."""
    from .plugin.plugin import ContrasatPlugin

    return ContrasatPlugin(iface)
