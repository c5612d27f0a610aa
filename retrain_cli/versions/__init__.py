"""Model versions: numbering and recording them, the active version, promote and rollback, the
serving document, and rollouts (`rollouts/`)."""
