"""Running the generated C on targets: the board registry (``boards``), the PlatformIO build
support (``build``) and the instruction-count benchmark (``bench``)."""
