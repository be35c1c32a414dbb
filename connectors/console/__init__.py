"""The console connector: the same core, in a terminal."""
