"""MIDI I/O: ports and their supervision, the input filter, the note ledger, clocks, MIDI files,
the recorder and the connection-graph rescue (docs/ARCHITECTURE.md, "Modules")."""
