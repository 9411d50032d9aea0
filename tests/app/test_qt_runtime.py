"""The Qt binding the app runs on must not corrupt Python's bools (a crash that only shows after minutes)."""

import os
import subprocess
import sys

SCRIPT = """
import sys
from PySide6.QtCore import QCoreApplication, QObject, Signal
app = QCoreApplication([])
class A(QObject):
    changed = Signal(bool)
a = A()
seen = []
a.changed.connect(seen.append)
before = sys.getrefcount(True)
for _ in range(20000):  # a playing timeline emits this many in a few minutes
    a.changed.emit(True)
seen.clear()
print(sys.getrefcount(True) - before)
"""


def test_bool_signals_keep_their_references():
    # PySide6 6.12.0 lost one reference per emit: CPython 3.11 then aborts with "bool_dealloc" mid-session
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert r.returncode == 0, r.stderr[-500:]
    assert abs(int(r.stdout.strip())) < 100
