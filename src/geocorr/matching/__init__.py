"""geocorr.matching."""
