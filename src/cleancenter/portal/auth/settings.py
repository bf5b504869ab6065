"""Settings of the portal's access control: cookies, sessions, body limits, rate limits.

Defaults suit a portal behind a TLS proxy. Each can be changed with a
``CLEANCENTER_PORTAL_*`` variable (see `AccessSettings.from_env`) or by passing
`AccessSettings` to ``create_app``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta

MIB = 1024 * 1024
COOKIE_MODES = ("auto", "always", "never")
ENV = "CLEANCENTER_PORTAL_"


@dataclass(frozen=True)
class AccessSettings:
    # ``auto``: Secure unless the request is plain http to a loopback host name
    secure_cookies: str = "auto"
    session_idle: timedelta = timedelta(hours=12)
    session_max: timedelta = timedelta(days=7)
    upload_limit: int = 64 * MIB  # POST /api/v1/samples
    sent_report_limit: int = 32 * MIB  # POST /api/v1/isp/sent-report
    rate_limits: bool = True
    login_per_minute: float = 10.0  # POST /login, per client address
    landing_per_minute: float = 120.0  # /n/..., per client address (CGNAT: be generous)
    reports_per_minute: float = 60.0  # POST /api/v1/cleaner-reports, per client address
    token_per_minute: float = 600.0  # /api/v1/... with a bearer token, per token

    def __post_init__(self) -> None:
        if self.secure_cookies not in COOKIE_MODES:
            raise ValueError(f"secure_cookies {self.secure_cookies!r}: one of "
                             f"{', '.join(COOKIE_MODES)}")
        for name in ("login_per_minute", "landing_per_minute", "reports_per_minute",
                     "token_per_minute"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.upload_limit <= 0 or self.sent_report_limit <= 0:
            raise ValueError("body limits must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AccessSettings:
        """``CLEANCENTER_PORTAL_SECURE_COOKIES`` (auto|always|never),
        ``..._SESSION_IDLE_HOURS``, ``..._SESSION_MAX_HOURS``, ``..._UPLOAD_MB``,
        ``..._RATE_LIMITS`` (on|off), ``..._LOGIN_PER_MINUTE``,
        ``..._LANDING_PER_MINUTE``, ``..._REPORTS_PER_MINUTE``, ``..._TOKEN_PER_MINUTE``."""
        env = os.environ if environ is None else environ
        settings = cls()

        def number(name: str) -> float | None:
            text = env.get(ENV + name)
            if not text:
                return None
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"{ENV}{name}={text!r} is not a number") from None

        changes: dict[str, object] = {}
        if env.get(ENV + "SECURE_COOKIES"):
            changes["secure_cookies"] = env[ENV + "SECURE_COOKIES"].strip().lower()
        if (hours := number("SESSION_IDLE_HOURS")) is not None:
            changes["session_idle"] = timedelta(hours=hours)
        if (hours := number("SESSION_MAX_HOURS")) is not None:
            changes["session_max"] = timedelta(hours=hours)
        if (mb := number("UPLOAD_MB")) is not None:
            changes["upload_limit"] = int(mb * MIB)
        switch = env.get(ENV + "RATE_LIMITS", "").strip().lower()
        if switch:
            if switch not in ("on", "off", "1", "0", "true", "false", "yes", "no"):
                raise ValueError(f"{ENV}RATE_LIMITS={switch!r}: on or off")
            changes["rate_limits"] = switch in ("on", "1", "true", "yes")
        for field in ("login", "landing", "reports", "token"):
            if (value := number(f"{field.upper()}_PER_MINUTE")) is not None:
                changes[f"{field}_per_minute"] = value
        return replace(settings, **changes)  # type: ignore[arg-type]
