"""The own-classes study: land cover in the analyst's classes from a few polygons (issue 18)."""
