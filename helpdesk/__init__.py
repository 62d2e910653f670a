"""helpdesk: a multi-tenant help desk. `create_app` is the only composition root."""

from __future__ import annotations

from flask import Flask, g, request
from redis import Redis
from werkzeug.middleware.proxy_fix import ProxyFix

from helpdesk import (
    errors,
    htmx,
    logs,
    ratelimits,
    requestid,
    security_headers,
    sentry,
    tenancy,
    timefmt,
)
from helpdesk.config import Settings
from helpdesk.db import (
    close_session,
    get_session,
    install_guards,
    make_engine,
    make_sessionmaker,
)
from helpdesk.extensions import csrf, login_manager
from helpdesk.services import tasks


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app: settings, extensions, tenancy, blueprints, error pages."""
    settings = settings or Settings.from_env()
    settings.validate()
    logs.configure(settings.log_format, settings.log_level)  # before anything logs
    sentry.init(settings)  # no-op unless SENTRY_DSN is set
    app = Flask(__name__)
    app.config.from_mapping(settings.flask_config())
    app.config["SETTINGS"] = settings
    if settings.proxy_hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops
        )

    engine = make_engine(settings.database_url)
    app.extensions["helpdesk.engine"] = engine
    app.extensions["helpdesk.sessionmaker"] = make_sessionmaker(engine)
    app.extensions["helpdesk.redis"] = Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5
    )
    app.teardown_appcontext(close_session)
    from helpdesk import request_metrics  # here: importing it creates the metric files

    request_metrics.init_app(app, engine)  # first after_request hook: sees the final status
    tenancy.install()
    install_guards()
    tasks.install()
    from helpdesk import storage

    storage.init_app(app)  # no I/O: buckets/dirs are created on first use; /readyz checks
    requestid.init_app(app)

    _init_login(app)
    csrf.init_app(app)
    htmx.init_app(app)
    timefmt.init_app(app)
    security_headers.init_app(app)
    errors.init_app(app)
    _register_blueprints(app)
    ratelimits.install(app)
    from helpdesk import flag_gates

    flag_gates.install(app)  # after the limits: a switched-off route counts no attempt
    from helpdesk import cli

    cli.init_app(app)
    return app


def _init_login(app: Flask) -> None:
    from helpdesk.models import User
    from helpdesk.services.auth import load_user

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please log in to continue."
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def _load(identity: str) -> User | None:
        # On an org page the membership comes in the same query; the org gate takes it.
        slug = (request.view_args or {}).get("org_slug")
        user, member = load_user(get_session(), identity, slug)
        if user is not None and slug is not None:
            g.preloaded_member = (slug, member)
        return user


def _register_blueprints(app: Flask) -> None:
    from helpdesk.blueprints.admin import bp as admin_bp
    from helpdesk.blueprints.api import bp as api_bp
    from helpdesk.blueprints.auth import bp as auth_bp
    from helpdesk.blueprints.canned import bp as canned_bp
    from helpdesk.blueprints.ops import bp as ops_bp
    from helpdesk.blueprints.ops import rq_bp as ops_rq_bp
    from helpdesk.blueprints.profile import bp as profile_bp
    from helpdesk.blueprints.tickets import bp as tickets_bp

    for bp in (auth_bp, ops_bp, ops_rq_bp, tickets_bp, profile_bp, canned_bp, admin_bp, api_bp):
        app.register_blueprint(bp)
    csrf.exempt(api_bp)  # bearer tokens only, never cookies: no ambient authority to forge

    from helpdesk.blueprints.inbound import bp as inbound_bp

    app.register_blueprint(inbound_bp)  # POST /inbound/email from the inbound-mail service
    csrf.exempt(inbound_bp)  # authenticated by a bearer secret, never by cookies

    from helpdesk.blueprints.links import bp as links_bp

    app.register_blueprint(links_bp)  # /t/<token> and the requester's /r/ pages

    from helpdesk.blueprints.request_form import bp as request_form_bp

    app.register_blueprint(request_form_bp)  # public, no login; CSRF stays on
