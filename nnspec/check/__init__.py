"""Training sanity checks (``nnspec check``) and the LR range test (``nnspec lr-find``)."""
