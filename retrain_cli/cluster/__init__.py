"""Everything Dask: the cluster connection, profiles built on it and LightGBM trained on it."""
