"""geocorr.reconstruct."""
