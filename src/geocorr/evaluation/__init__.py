"""geocorr.evaluation."""
