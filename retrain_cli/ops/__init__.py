"""Operations: `stats`, the Prometheus textfile and the static HTML report."""
