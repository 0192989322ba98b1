"""``python -m nnspec``: the ``nnspec`` command (see :mod:`nnspec.cli.main`)."""

from nnspec.cli.main import entry

if __name__ == "__main__":
    entry()
