"""Puts tools/ on sys.path so tests can import the HR file generator (tools/generate_hr_file.py)."""
import sys
from pathlib import Path

TOOLS = str(Path(__file__).resolve().parents[2] / "tools")
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)
