"""Data quality: the row rules that exclude and count bad source rows, and the gate that stops a
period's publication when its numbers cannot be trusted (freshness, volume, ranges, plausibility)."""
