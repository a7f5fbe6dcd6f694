"""Rules: named, prioritised matches on sender, subject and body markers that give a mail its category and action.

Rules are data (reviewed TOML files under rules/, and the live rules table); this package validates and compiles
them once, then matches parsed mail with no I/O.
"""
