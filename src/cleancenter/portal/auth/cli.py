"""``cleancenter users ...`` and ``cleancenter tokens ...``: who may use the portal."""

from __future__ import annotations

import os

import typer
from rich.table import Table

from cleancenter.center import Center
from cleancenter.console import err, fail, out, print_json
from cleancenter.portal.auth.store import (
    AccessError,
    add_user,
    create_token,
    disable_user,
    list_tokens,
    list_users,
    revoke_token,
)
from cleancenter.textsafe import for_console

users_app = typer.Typer(help="Portal users (analysts, ISP staff, admins).",
                        no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for the portal's JSON API.", no_args_is_help=True)
JSON = typer.Option(False, "--json", help="JSON output.")
ROLE_HELP = "admin, analyst or isp:NAME (a registered ISP)"


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="the user's sign-in name"),
    roles: list[str] = typer.Option(..., "--role", help=ROLE_HELP + "; may be repeated"),
    password_env: str | None = typer.Option(
        None, "--password-env", help="read the password from this environment variable "
        "(else it is asked for twice)"),
    as_json: bool = JSON,
) -> None:
    """Add a user who can sign in to the portal."""
    center: Center = ctx.obj
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            raise fail(f"environment variable {password_env} is not set or empty")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True,
                                err=True)
    try:
        with center.catalog.transaction() as conn:
            user = add_user(conn, name, password, roles)
    except AccessError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json(user.to_dict())
    else:
        out.print(f"user {for_console(user.name)} added: {for_console(', '.join(user.roles))}")


@users_app.command("list")
def users_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Every user, its roles and whether it is disabled (never a password hash)."""
    center: Center = ctx.obj
    with center.catalog.engine.connect() as conn:
        users = list_users(conn)
    if as_json:
        print_json([u.to_dict() for u in users])
        return
    table = Table("name", "roles", "disabled", "created")
    for u in users:
        table.add_row(for_console(u.name), for_console(", ".join(u.roles)),
                      "yes" if u.disabled else "", u.created.isoformat(timespec="seconds"))
    out.print(table)


@users_app.command("disable")
def users_disable(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Stop a user from signing in; their sessions end at once."""
    center: Center = ctx.obj
    try:
        with center.catalog.transaction() as conn:
            disable_user(conn, name)
    except AccessError as exc:
        raise fail(str(exc)) from exc
    out.print(f"user {for_console(name)} disabled")


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    name: str = typer.Option(..., "--name", help="what the token is for (e.g. the ISP's "
                                                 "export job)"),
    role: str = typer.Option(..., "--role", help=ROLE_HELP),
    as_json: bool = JSON,
) -> None:
    """Make a token. It is printed once, here; the center keeps only its hash."""
    center: Center = ctx.obj
    try:
        with center.catalog.transaction() as conn:
            entry, text = create_token(conn, name, role)
    except AccessError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print_json({**entry.to_dict(), "token": text})
        return
    typer.echo(text)
    err.print(f"token {entry.id} ({for_console(entry.role)}) made; it is shown only this "
              "once: keep it now")


@tokens_app.command("list")
def tokens_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Every token's id, name, role and use (never the token itself)."""
    center: Center = ctx.obj
    with center.catalog.engine.connect() as conn:
        tokens = list_tokens(conn)
    if as_json:
        print_json([t.to_dict() for t in tokens])
        return
    table = Table("id", "name", "role", "created", "last used", "revoked")
    for t in tokens:
        table.add_row(t.id, for_console(t.name), for_console(t.role),
                      t.created.isoformat(timespec="seconds"),
                      t.last_used.isoformat(timespec="seconds") if t.last_used else "",
                      t.revoked.isoformat(timespec="seconds") if t.revoked else "")
    out.print(table)


@tokens_app.command("revoke")
def tokens_revoke(ctx: typer.Context, token_id: str = typer.Argument(..., metavar="ID")
                  ) -> None:
    """Revoke a token by its id (see tokens list); it stops working at once."""
    center: Center = ctx.obj
    try:
        with center.catalog.transaction() as conn:
            revoke_token(conn, token_id)
    except AccessError as exc:
        raise fail(str(exc)) from exc
    out.print(f"token {token_id} revoked")

