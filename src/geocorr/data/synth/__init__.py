"""geocorr.data.synth."""
