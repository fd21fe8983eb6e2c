"""Land-cover kit: Sentinel-2 L1C per-pixel land cover on the TerraMind sites (+ Slovenia), judged
leave-one-site-out next to the majority class, and exported as the bundled `landcover_s2` model."""
