"""View-models: QObjects holding the app's state as typed properties with ``*_changed`` signals, plus actions.

Widgets (``app.widgets``) only render these and call their actions, so every behaviour is testable without
pixels, against a FakeEngine.
"""
