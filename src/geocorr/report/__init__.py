"""geocorr.report."""
