"""What every layer shares: errors and exit codes, closed sets of choices, durations, settings and
the config file, redaction, private files, serialisation, thread shares and notifications."""
