"""``python -m cleancenter.cleaner``: the same as ``cleancenter-cleaner``."""

from cleancenter.cleaner.cli import main

main()
