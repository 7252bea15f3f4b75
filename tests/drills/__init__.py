# The user property a drill records its one-line summary under: tests/conftest.py prints every summary at the end of
# the run, passed or failed, from whichever process ran the drill.
DRILL_SUMMARY = "drill summary"
