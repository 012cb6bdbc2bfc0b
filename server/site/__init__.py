"""Static export: `darklaunch site build` writes reports and public pages as plain files."""

from flask import Flask


def init_app(app: Flask) -> None:
    from server.site.cli import site

    app.extensions.setdefault("site.sections", {})
    app.cli.add_command(site)
