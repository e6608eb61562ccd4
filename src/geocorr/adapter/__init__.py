"""geocorr.adapter."""
