"""The sweep, comparison and tune files that ship with groklab (``groklab sweeps`` lists them; ``groklab.bundled``)."""
