"""Tools behind the command line that are not part of the engine proper."""
