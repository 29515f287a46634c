"""A node kind that is not part of rnnjit, written the way docs/architecture.md says to add one: its kernel
module (kernel.py), its room (room.py), and a row in the kinds table (the test adds it for its duration)."""
