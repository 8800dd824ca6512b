"""Wire models of the accepted payload formats, the canonical micro-event and the record."""
