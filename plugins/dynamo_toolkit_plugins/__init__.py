"""The built-in strategies of dynamo-toolkit.

Each module is a plugin registered through the ``dynamo_toolkit`` entry-point
group, exactly as an outside plugin would be; the kernel imports none of them.
"""
