"""Where files live: a version's artifact directory, written atomically and verified by
checksums."""
