"""Readers of the licensed micro-expression corpora: annotation workbooks + frame folders → ClipSpecs."""
