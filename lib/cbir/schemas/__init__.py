"""One module per notebook section, each defining ``SCHEMA`` (see :mod:`cbir.params`)."""
