"""The ``centaurus`` command line (typer + rich)."""
