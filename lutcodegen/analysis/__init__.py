"""Measuring the methods: accuracy against float64 softmax (``evaluate``, ``report``) and the
row sets both measure on (``rowsets``)."""
