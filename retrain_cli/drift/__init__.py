"""Drift: two windows compared column by column, one check of a job (exact or against a profile),
the domain classifier, profiles kept on disk, and the HTML report."""
