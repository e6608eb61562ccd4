"""geocorr.data."""
