"""HTTP infrastructure shared by the routes: sessions, authentication, locale, errors, rendering."""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent.parent / "templates"
STATIC_DIR = Path(__file__).parent.parent.parent / "static"
