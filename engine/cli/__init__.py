"""The ``tunedeck`` command line: one module per command group; ``main`` alone prints."""
