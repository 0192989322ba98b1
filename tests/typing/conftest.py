# usage.py and mistakes.py are input for mypy and pyright (`make typecheck`), not tests: importing
# them would run user code (and mistakes.py raises by design), so pytest collects nothing here.
collect_ignore_glob = ["*.py"]
