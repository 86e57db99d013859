"""Helpers shared by test modules (importable because pytest puts ``tests/`` on the path).

Test modules import helpers from here, never from one another.
"""
