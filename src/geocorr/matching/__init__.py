"""geocorr.matching: nearest neighbours, relaxed cyclic consistency, candidate matches."""
