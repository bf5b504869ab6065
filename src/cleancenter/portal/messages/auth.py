"""Texts of signing in and out."""

from __future__ import annotations

JA: dict[str, str] = {
    "auth_login": "ログイン",
    "auth_logout": "ログアウト",
    "auth_title": "センター職員のログイン",
    "auth_intro": "解析担当者・プロバイダ担当者のためのページです。"
                  "お知らせを受け取った方はログインの必要はありません。",
    "auth_name": "ユーザー名",
    "auth_password": "パスワード",
    "auth_submit": "ログイン",
    "auth_failed": "ユーザー名またはパスワードが違います。",
    "auth_expired": "フォームの有効期限が切れました。もう一度お試しください。",
    "auth_signed_in_as": "ログイン中のユーザー:",
}

EN: dict[str, str] = {
    "auth_login": "Sign in",
    "auth_logout": "Sign out",
    "auth_title": "Sign in for center staff",
    "auth_intro": "For analysts and ISP staff. If you received a notice, you do not need "
                  "to sign in.",
    "auth_name": "User name",
    "auth_password": "Password",
    "auth_submit": "Sign in",
    "auth_failed": "Wrong user name or password.",
    "auth_expired": "The form has expired. Please try again.",
    "auth_signed_in_as": "Signed in as",
}
