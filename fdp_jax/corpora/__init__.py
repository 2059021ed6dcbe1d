"""Where the clips come from: readers of the licensed micro-expression corpora (annotation workbooks +
frame folders → ClipSpecs), the MEGC 2019 composite of three of them, and the procedural synthetic faces."""
