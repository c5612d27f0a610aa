"""Storage: the six tables, the session scope, the schema's migrations and the queries."""
