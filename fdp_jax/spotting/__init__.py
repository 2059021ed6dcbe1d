"""Spotting micro- and macro-expressions in long videos, then recognising what was spotted."""
