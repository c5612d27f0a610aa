"""One module per command or command group; the shared options, output and runtime stay in cli/."""
