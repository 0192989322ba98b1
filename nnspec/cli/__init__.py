"""The ``nnspec`` command line (entry point :func:`nnspec.cli.main.main`).

Every command shares one grammar: ``nnspec COMMAND [SPEC.yaml] [group=option ...] [key=value ...]``;
see :mod:`nnspec.cli.main` for the command table and :mod:`nnspec.cli.common` for the shared parts.
"""
