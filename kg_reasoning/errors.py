"""Errors for bad user input; the CLI prints them as one line and exits with code 2."""


class KGError(Exception):
    """Bad input or configuration (a file, a model, a parameter): message for the user."""
