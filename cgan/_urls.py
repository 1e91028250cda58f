"""URLs as messages, logs and records show them: credentials replaced by *** (no cgan imports, no I/O). One
redactor for the video runtime's stream URLs and the exporter's download URLs."""
from __future__ import annotations

import re
import urllib.parse

#: query / fragment parameters that carry a credential, matched as parts of the lower-cased name (token,
#: access_token, password, key, api_key, auth, signature, X-Amz-Credential, ...); printing too little beats a leak
SECRET_PARAM_PARTS = ("token", "pass", "pwd", "secret", "key", "sig", "auth", "cred", "session", "jwt", "hmac",
                      "ticket")
SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_HOST_PORT = re.compile(r"(\[[0-9A-Za-z:.%]*\]|[A-Za-z0-9._~%!$&'()*+,;=-]*)(:[0-9]*)?")


def redact_url(url: str) -> str:
    """`url` as printed in logs, errors and summaries, its credentials replaced by ***:

    rtsp://user:secret@host/x -> rtsp://user:***@host/x, rtsp://TOKEN@host/x -> rtsp://***@host/x,
    https://host/live.m3u8?token=T&x=1 -> https://host/live.m3u8?token=***&x=1 (see SECRET_PARAM_PARTS).

    Never raises and never needs a well-formed URL: urllib.parse would cut a password with an unencoded / ? or #
    (rtsp://admin:pa/ss@host/x) at that character and show the rest as the path, so the user part is found here,
    erring on the side of hiding (an @ in a URL's path hides what comes before it). Anything without :// is
    returned unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    if not SCHEME.fullmatch(scheme):  # e.g. "admin:pw@host://x": not a scheme, maybe a secret
        scheme = "***"
    userinfo, tail = _split_userinfo(rest)
    if userinfo is None:
        shown = ""
    else:
        user, colon, _ = userinfo.partition(":")
        shown = f"{user}:***@" if colon else "***@"  # no ':': the user name is the token
    return f"{scheme}://{shown}{_redact_params(tail)}"


def url_host(url: str) -> str | None:
    """The host name or address a `scheme://` URL names, without user info, port or IPv6 brackets; None
    without one (`udp://@:1234`, a listening URL) or without ://."""
    _, sep, rest = url.partition("://")
    if not sep:
        return None
    _, tail = _split_userinfo(rest)
    hostport = tail[:_first(tail, "/?#")]
    if hostport.startswith("["):
        host = hostport[1:hostport.find("]")] if "]" in hostport else hostport[1:]
    else:
        host = hostport.rpartition(":")[0] if ":" in hostport else hostport
    return host or None


def _first(text: str, chars: str) -> int:
    """Index of the first of `chars` in `text` (len(text) if none)."""
    return min((i for i in map(text.find, chars) if i >= 0), default=len(text))


def _split_userinfo(rest: str) -> tuple[str | None, str]:
    """(user info or None, host and the rest) of what follows `scheme://`."""
    end = _first(rest, "/?#")
    at = rest.rfind("@", 0, end)
    if at < 0 and "@" in rest:
        if not _HOST_PORT.fullmatch(rest[:end]):
            at = rest.rfind("@")  # "admin:pa" is no host[:port]: a password cut at its / ? or #
        else:
            at = rest.rfind("@", 0, _first(rest, "?#"))  # a token with a '/' (an '@' in the query is left alone)
    if at < 0:
        return None, rest
    return rest[:at], rest[at + 1:]


def _redact_params(tail: str) -> str:
    """host/path?query#fragment with the values of credential-like query and fragment parameters replaced."""
    before, hash_, fragment = tail.partition("#")
    head, mark, query = before.partition("?")
    return f"{head}{mark}{_redact_pairs(query)}{hash_}{_redact_pairs(fragment)}"


def _redact_pairs(text: str) -> str:
    parts = re.split(r"([&;])", text)
    for i, part in enumerate(parts):
        name, eq, _ = part.partition("=")
        if eq and _secret_name(name):
            parts[i] = f"{name}=***"
    return "".join(parts)


def _secret_name(name: str) -> bool:
    key = urllib.parse.unquote_plus(name).lower()
    return any(word in key for word in SECRET_PARAM_PARTS)


def url_secrets(url: str) -> set[str]:
    """The credentials redact_url hides in `url` (the user info, its password, a user name of 3 or more
    characters, credential-like parameter values), raw and %-decoded: to scrub them from messages that other
    libraries wrote (a short user name is not worth blanking every such letter in a message)."""
    _, sep, rest = url.partition("://")
    if not sep:
        return set()
    userinfo, tail = _split_userinfo(rest)
    found = []
    if userinfo is not None:
        user, colon, password = userinfo.partition(":")
        found += [userinfo, password] if colon else [userinfo]  # no ':': a token as the user name
        if len(user) >= 3 and colon:
            found.append(user)
    before, _, fragment = tail.partition("#")
    for text in (before.partition("?")[2], fragment):
        for part in re.split(r"[&;]", text):
            name, eq, value = part.partition("=")
            if eq and _secret_name(name):
                found.append(value)
    return {s for v in found for s in (v, urllib.parse.unquote(v)) if s}
