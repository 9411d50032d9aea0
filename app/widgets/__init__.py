"""Thin widgets: each page renders one view-model from ``app.state`` and forwards user actions to it."""
