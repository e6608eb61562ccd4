"""geocorr.labels."""
