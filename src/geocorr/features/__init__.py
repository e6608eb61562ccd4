"""geocorr.features."""
