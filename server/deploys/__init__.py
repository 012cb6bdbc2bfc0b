"""Deploy history: record deploys from CI, report them with DORA metrics, export them."""

from flask import Flask


def init_app(app: Flask) -> None:
    from server.access import Permission
    from server.cli import add_demo_seeder
    from server.deploys import display
    from server.deploys.demo import seed_demo_deploys
    from server.deploys.export import write_deploy_reports
    from server.deploys.views import bp
    from server.site.builder import register_section
    from server.web import add_nav

    app.register_blueprint(bp)
    display.init_app(app)
    add_nav(app, "Deploys", "deploys.history", Permission.READ, order=40)
    add_demo_seeder(app, "deploys", seed_demo_deploys)
    register_section(
        app,
        "deploys",
        public=False,
        writer=write_deploy_reports,
        title="Deploy reports",
        index="deploys/index.html",
        description="Every deploy with its commits, tests and coverage, and the DORA metrics.",
    )
