"""Helpers shared by several test trees: ``from tests.support.fake_torchserve import running``."""
