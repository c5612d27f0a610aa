"""The seam between here and a cluster: the work that may run in either place (prepare training
rows, fit, profile a dataset, count a window against a profile) behind one interface, done here by
`local` and on Dask by `retrain_cli.cluster`; a `Placement` chooses per job."""
