"""The test suites: a package, so that ``tests.support`` is importable from every tree.

pytest's default ``prepend`` import mode puts the parent of the outermost directory holding an
``__init__.py`` (the repository) on ``sys.path``, and names each test module by its path
(``tests.unit.record.test_store``): test modules may share a basename across folders.
"""
